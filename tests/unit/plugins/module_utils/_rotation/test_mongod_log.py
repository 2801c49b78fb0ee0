# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.mongod_log: mongod's log read backwards, rotated copies, runs, PSMDB's nested errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation import mongod_log
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import (
    LogFollower,
    ReverseLineReader,
    describe_encryption_error,
    runs_from_entries,
    scan_log,
)
from unit.utils.rotation_member import ROTATE_ERROR, log_line, normal_start, rotation, start_lines


def write(path: Path, lines: list[str], end: str = "\n") -> None:
    path.write_text("\n".join(lines) + end)


# -- reading backwards --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 65536])
def test_lines_come_newest_first_whatever_the_chunk_size(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "log"
    lines = [f"line {i} " + "x" * (i % 5) for i in range(40)]
    write(path, lines)
    reader = ReverseLineReader(str(path), 10_000, chunk_bytes=chunk)
    assert [line.decode() for line in reader] == list(reversed(lines))
    assert reader.truncated is False and reader.bytes_read == path.stat().st_size


def test_a_last_line_still_being_written_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text('{"id":1}\n{"id":2}\n{"id":3, "half')
    assert [line.decode() for line in ReverseLineReader(str(path), 10_000, chunk_bytes=4)] == ['{"id":2}', '{"id":1}']


def test_the_budget_ends_the_read_and_a_cut_line_is_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write(path, ["a" * 30, "b" * 30, "c" * 30])
    reader = ReverseLineReader(str(path), 45, chunk_bytes=8)
    assert [line.decode() for line in reader] == ["c" * 30]
    assert reader.truncated is True and reader.bytes_read == 45


def test_an_empty_file_has_no_lines(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("")
    assert list(ReverseLineReader(str(path), 100)) == []


def test_rotated_copies_follow_the_current_file_newest_first_and_compressed_are_skipped(tmp_path: Path) -> None:
    current = tmp_path / "mongod.log"
    current.write_text("")
    names = ["mongod.log.2026-11-01T00-00-00", "mongod.log.1", "mongod.log.2026-11-20T00-00-00", "mongod.log.3.gz"]
    for age, name in enumerate(names):
        (tmp_path / name).write_text("")
        os.utime(tmp_path / name, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    (tmp_path / "other.log").write_text("")
    files, skipped = mongod_log.log_files(str(current))
    assert files == [str(current)] + [str(tmp_path / n) for n in names[:3]]
    assert skipped == [str(tmp_path / "mongod.log.3.gz")]


# -- PSMDB's 29120 error ------------------------------------------------------------------------


def test_a_nested_rotation_error_is_walked_to_its_innermost_reason() -> None:
    described = describe_encryption_error(ROTATE_ERROR)
    assert described["what"] == "Can't rotate master encryption key"
    assert described["reason"].startswith("saving the master key to the KMIP server failed")
    assert described["message"].startswith(
        "Can't rotate master encryption key: key saving failed: saving the master key"
    )
    assert described["document"] == ROTATE_ERROR


def test_key_fields_met_on_the_way_are_kept() -> None:
    error = {
        "what": "Can't create encryption key database",
        "reason": {
            "what": "key reading failed",
            "reason": "Master encryption key is not in the active state on the key management facility.",
            "keyManagementFacilityType": "KMIP server",
            "keyIdentifier": {"kmipKeyIdentifier": "42"},
            "keyState": "Deactivated",
        },
        "encryptionKeyDatabaseDirectory": "/db/key.db",
    }
    described = describe_encryption_error(error)
    assert (described["key_identifier"], described["key_state"]) == ("42", "Deactivated")
    assert described["fields"]["encryptionKeyDatabaseDirectory"] == "/db/key.db"


def test_a_top_level_error_without_reason_and_a_flat_string() -> None:
    error = {
        "what": "Master key rotation is in effect but there is no existing encryption key database.",
        "dbPath": "/db",
        "possibleRemediationActions": ["start without rotateMasterKey"],
    }
    described = describe_encryption_error(error)
    assert described["message"] == error["what"] and described["reason"] is None
    assert described["fields"]["possibleRemediationActions"] == ["start without rotateMasterKey"]
    flat = describe_encryption_error("Cannot do master key rotation. Rotation directory '/db/key.db.rotation' exists.")
    assert flat["what"] is None and flat["message"].startswith("Cannot do master key rotation")
    assert describe_encryption_error(None)["message"] == ""


# -- runs ---------------------------------------------------------------------------------------


def parsed(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def test_a_normal_start_uses_the_key_it_read() -> None:
    (run,) = runs_from_entries(parsed(normal_start(10, "7")))
    assert run.pid == 10 and run.complete and run.rotation is False
    assert run.key_in_use == "7" and run.outcome() == "clean_exit"


def test_a_completed_rotation_uses_its_new_key_and_a_failed_one_none() -> None:
    (done,) = runs_from_entries(parsed(rotation(11, "7", "8")))
    assert (done.rotated_from, done.rotated_to, done.key_in_use, done.outcome()) == ("7", "8", "8", "rotated")
    failed_lines = rotation(12, "7", "9", complete=False)
    failed_lines.append(log_line(29120, "Data-at-Rest Encryption Error", {"error": ROTATE_ERROR}))
    failed_lines.append(log_line(23138, "Shutting down", {"exitCode": 1001}))
    (failed,) = runs_from_entries(parsed(failed_lines))
    assert failed.key_in_use is None and failed.outcome() == "encryption_error"
    assert failed.encryption_error is not None and failed.exit_code == 1001
    (killed,) = runs_from_entries(parsed(rotation(13, "7", "9", complete=False)))
    assert killed.outcome() == "ended_without_shutdown_line" and killed.outcome(running_pid=13) == "running"
    assert killed.new_key_of_rotation == "9"


def test_a_provided_new_key_is_the_second_key_read() -> None:
    (run,) = runs_from_entries(parsed(rotation(14, "7", "10", generated=False, complete=False)))
    assert run.key_ids_read == ["7", "10"] and run.new_key_of_rotation == "10"


def test_the_password_of_log_21951_is_never_kept() -> None:
    (run,) = runs_from_entries(parsed(start_lines(15, password="Dummy-Pass-21951")))
    assert "Dummy-Pass-21951" not in json.dumps(run.as_result()) + json.dumps(run.entries)


def test_scan_reads_runs_newest_first_across_rotated_copies(tmp_path: Path) -> None:
    current = tmp_path / "mongod.log"
    older = tmp_path / "mongod.log.2026-11-01T00-00-00"
    write(older, normal_start(1, "5", created=True) + rotation(2, "5", "6"))
    write(
        current,
        normal_start(3, "6")
        + start_lines(4)
        + [log_line(29115, "read", {"keyIdentifier": {"kmipKeyIdentifier": "6"}})],
    )
    os.utime(older, (1_000, 1_000))
    scan = scan_log(str(current), 1_000_000)
    assert [run.pid for run in scan.runs] == [4, 3, 2, 1]
    assert scan.files == [str(current), str(older)] and scan.truncated is False
    assert scan.key_in_use == "6", "the newest run has not opened its keystore yet: the one before says"
    assert scan.last_rotation is not None and scan.last_rotation.pid == 2
    result = scan.as_result(running_pid=4)
    assert result["runs"][0]["outcome"] == "running"
    assert result["last_rotation"] == {
        "at": scan.runs[2].rotated_at,
        "old_key_identifier": "5",
        "new_key_identifier": "6",
    }


def test_scan_stops_at_the_budget_and_keeps_a_partial_run(tmp_path: Path) -> None:
    current = tmp_path / "mongod.log"
    lines = normal_start(1, "5") + normal_start(2, "5")
    write(current, lines)
    last_run_bytes = len("\n".join(normal_start(2, "5")[2:]) + "\n")
    scan = scan_log(str(current), last_run_bytes)
    assert scan.truncated is True
    assert len(scan.runs) == 1 and scan.runs[0].complete is False and scan.runs[0].pid is None
    many = scan_log(str(current), 1_000_000, max_runs=1)
    assert [run.pid for run in many.runs] == [2]


def test_scan_of_an_unreadable_log_reports_the_error(tmp_path: Path) -> None:
    directory = tmp_path / "mongod.log"
    directory.mkdir()
    scan = scan_log(str(tmp_path / "absent.log"), 100)
    assert scan.runs == [] and scan.files == []


# -- following one run --------------------------------------------------------------------------


def test_the_follower_reads_only_new_lines_and_survives_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "mongod.log"
    write(path, ['{"id": 1}'])
    follower = LogFollower(str(path))
    assert follower.poll() == []
    with open(path, "a") as handle:
        handle.write('{"id": 2}\n{"id": 3')
    assert [e["id"] for e in follower.poll()] == [2]
    with open(path, "a") as handle:
        handle.write("}\n")
    assert [e["id"] for e in follower.poll()] == [3]
    # logAppend: false - mongod renames the old file and starts a new one
    path.rename(tmp_path / "mongod.log.old")
    write(path, ['{"id": 4}'])
    assert [e["id"] for e in follower.poll()] == [4]
    path.write_text("")  # truncated
    with open(path, "a") as handle:
        handle.write('{"id": 5}\n')
    assert [e["id"] for e in follower.poll()] == [5]
    assert [e["id"] for e in follower.entries] == [2, 3, 4, 5]


def test_a_log_that_does_not_exist_yet_is_followed_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "mongod.log"
    follower = LogFollower(str(path))
    assert follower.poll() == []
    write(path, ['{"id": 7}', "not json", '{"no": "id"}'])
    assert [e["id"] for e in follower.poll()] == [7]
