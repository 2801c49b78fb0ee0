# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.state: the states an interrupted rotation leaves, told from the dbPath, the log and the run."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation import state
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import MemberFiles
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import (
    LogScan,
    runs_from_entries,
)
from unit.utils.db_path import write_storage_bson
from unit.utils.rotation_member import ROTATE_ERROR, log_line, normal_start, rotation


def db(tmp_path: Path, key_id: str | None = "1", *dirs: str) -> Path:
    write_storage_bson(tmp_path, {"kmip": {"keyId": key_id}} if key_id else None)
    for name in dirs:
        (tmp_path / name).mkdir()
    return tmp_path


def scan_of(*runs: list[str]) -> LogScan:
    """A scan whose runs are given oldest first (as they were logged)."""
    entries = [json.loads(line) for lines in runs for line in lines]
    return LogScan(path="mongod.log", runs=list(reversed(runs_from_entries(entries))))


def test_a_completed_rotation_is_ok(tmp_path: Path) -> None:
    files = MemberFiles.inspect(str(db(tmp_path, "2", "key.db", "key.db.rotated")))
    assessment = state.assess(files, scan_of(normal_start(1, "1", created=True), rotation(2, "1", "2")))
    assert assessment.state == state.OK


def test_no_data_and_data_not_encrypted_with_kmip(tmp_path: Path) -> None:
    assert state.assess(MemberFiles.inspect(str(tmp_path / "none"))).state == state.NO_DATA
    files = MemberFiles.inspect(str(db(tmp_path, None, "key.db")))
    assert state.assess(files).state == state.NOT_KMIP


def test_a_held_lock_is_running_or_a_rotation_running(tmp_path: Path) -> None:
    path = db(tmp_path, "1", "key.db")
    (path / "mongod.lock").write_text("")
    with open(path / "mongod.lock", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        files = MemberFiles.inspect(str(path))
        assert state.assess(files).state == state.RUNNING
        assert state.assess(files, running_rotation=True).state == state.ROTATION_RUNNING


def test_a_leftover_rotation_dir_and_the_key_its_run_registered(tmp_path: Path) -> None:
    files = MemberFiles.inspect(str(db(tmp_path, "1", "key.db", "key.db.rotation")))
    plain = state.assess(files)
    assert plain.state == state.LEFTOVER_ROTATION_DIR and "safe once no mongod runs" in plain.message
    killed_after_register = state.assess(files, scan_of(rotation(5, "1", "9", complete=False)))
    assert killed_after_register.state == state.LEFTOVER_ROTATION_DIR
    assert killed_after_register.interrupted_new_key == "9" and "registered the key 9" in killed_after_register.message


def test_no_key_db_after_the_first_rename_is_swap_interrupted(tmp_path: Path) -> None:
    files = MemberFiles.inspect(str(db(tmp_path, "1", "key.db.rotated", "key.db.rotation")))
    assessment = state.assess(files, scan_of(rotation(5, "1", "9", complete=False)))
    assert assessment.state == state.SWAP_INTERRUPTED and assessment.interrupted_new_key == "9"
    assert any("rename" in step and "key.db.rotated" in step for step in assessment.recovery)
    assert any("key.db.rotation" in step for step in assessment.recovery)


def test_the_log_tells_a_keystore_swapped_without_storage_bson(tmp_path: Path) -> None:
    files = MemberFiles.inspect(str(db(tmp_path, "1", "key.db", "key.db.rotated")))
    interrupted = rotation(5, "1", "9", complete=False)
    failed_start = [
        *normal_start(6, "1", shutdown=False)[:3],
        log_line(29120, "Data-at-Rest Encryption Error", {"error": {"what": "Can't create encryption key database"}}),
        log_line(23138, "Shutting down", {"exitCode": 1001}),
    ]
    for scan in (scan_of(interrupted), scan_of(interrupted, failed_start)):
        assessment = state.assess(files, scan)
        assert assessment.state == state.METADATA_NOT_WRITTEN, "also after a start that failed on it"
        assert assessment.interrupted_new_key == "9" and "pid 5" in assessment.message
        assert any("move" in step and "key.db" in step for step in assessment.recovery)


@pytest.mark.parametrize(
    "later",
    [
        pytest.param(normal_start(6, "1"), id="a later start opened the keystore"),
        pytest.param(
            [
                *rotation(6, "1", "9", complete=False)[:-1],
                log_line(29120, "Data-at-Rest Encryption Error", {"error": ROTATE_ERROR}),
            ],
            id="the rotation failed itself",
        ),
    ],
)
def test_the_same_layout_is_ok_when_the_log_says_so(tmp_path: Path, later: list[str]) -> None:
    files = MemberFiles.inspect(str(db(tmp_path, "1", "key.db", "key.db.rotated")))
    assert state.assess(files, scan_of(rotation(5, "1", "9", complete=False), later)).state == state.OK


def test_without_the_log_a_swapped_keystore_cannot_be_told(tmp_path: Path) -> None:
    files = MemberFiles.inspect(str(db(tmp_path, "1", "key.db", "key.db.rotated")))
    assert state.assess(files, None).state == state.OK


# -- after the module's own run: exact, from inodes ---------------------------------------------


def test_after_own_run_unchanged_and_rotated(tmp_path: Path) -> None:
    path = db(tmp_path, "1", "key.db")
    before = MemberFiles.inspect(str(path))
    assert state.after_own_run(before, MemberFiles.inspect(str(path)), None).message.startswith("unchanged")
    os.rename(path / "key.db", path / "key.db.rotated")
    (path / "key.db").mkdir()
    write_storage_bson(path, {"kmip": {"keyId": "2"}})
    assert state.after_own_run(before, MemberFiles.inspect(str(path)), None).message == "rotated"


def test_after_own_run_metadata_not_written_and_leftover(tmp_path: Path) -> None:
    path = db(tmp_path, "1", "key.db")
    before = MemberFiles.inspect(str(path))
    (run,) = runs_from_entries([json.loads(line) for line in rotation(5, "1", "9", complete=False)])
    os.rename(path / "key.db", path / "key.db.rotated")
    (path / "key.db").mkdir()
    swapped = state.after_own_run(before, MemberFiles.inspect(str(path)), run)
    assert swapped.state == state.METADATA_NOT_WRITTEN and swapped.interrupted_new_key == "9"
    # back to the start, and killed before the swap
    shutil.rmtree(path / "key.db")
    os.rename(path / "key.db.rotated", path / "key.db")
    (path / "key.db.rotation").mkdir()
    leftover = state.after_own_run(before, MemberFiles.inspect(str(path)), run)
    assert leftover.state == state.LEFTOVER_ROTATION_DIR and leftover.interrupted_new_key == "9"


def test_after_own_run_between_the_renames(tmp_path: Path) -> None:
    path = db(tmp_path, "1", "key.db")
    before = MemberFiles.inspect(str(path))
    os.rename(path / "key.db", path / "key.db.rotated")
    (path / "key.db.rotation").mkdir()
    assert state.after_own_run(before, MemberFiles.inspect(str(path)), None).state == state.SWAP_INTERRUPTED
