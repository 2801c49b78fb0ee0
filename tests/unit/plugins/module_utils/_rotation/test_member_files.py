# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.member_files: the dbPath's keystores, and mongod.lock probed with flock as mongod takes it."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import (
    MemberFiles,
    is_mongod_command,
    probe_lock,
    process_facts,
    read_pid_file,
)
from unit.utils.db_path import write_storage_bson


def test_no_lock_file_is_not_held(tmp_path: Path) -> None:
    state = probe_lock(str(tmp_path / "mongod.lock"))
    assert (state.exists, state.held, state.pid) == (False, False, None)
    assert not (tmp_path / "mongod.lock").exists(), "probing never creates the file"


def test_a_lock_held_by_another_open_file_is_held(tmp_path: Path) -> None:
    path = tmp_path / "mongod.lock"
    path.write_text(f"{os.getpid()}\n")
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        state = probe_lock(str(path))
        assert state.held is True and state.pid == os.getpid() and state.pid_alive
        assert state.unclean_shutdown is False
    assert probe_lock(str(path)).held is False, "the probe released what it took"


def test_a_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "mongod.lock"
    path.write_text("")
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, str(os.getpid()).encode())\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        state = probe_lock(str(path))
        assert state.held is True and state.pid == holder.pid and state.pid_alive
    finally:
        holder.communicate("")
    after = probe_lock(str(path))
    assert after.held is False and after.pid == holder.pid and after.pid_alive is False
    assert after.unclean_shutdown is True, "the file still names a pid nobody holds"


def test_process_facts_of_this_process_and_of_a_gone_one() -> None:
    alive, command = process_facts(os.getpid())
    assert alive and command and "python" in command
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert process_facts(gone.pid) == (False, None)


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    # not reaped yet: a zombie, as a forked mongod whose parent does not wait for it
    deadline = time.monotonic() + 60
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    assert process_facts(child.pid)[0] is False
    child.wait()


def test_mongod_commands_are_recognised() -> None:
    assert is_mongod_command("/usr/bin/mongod --config")
    assert is_mongod_command("/usr/bin/python3 /opt/psmdb-emulator/src/bin/mongod")
    assert not is_mongod_command("/usr/bin/sleep 100") and not is_mongod_command(None)


def test_pid_file_naming_a_live_mongod(tmp_path: Path) -> None:
    fake = tmp_path / "mongod"
    shutil.copy("/bin/sleep", fake)
    process = subprocess.Popen([str(fake), "60"])
    try:
        deadline = time.monotonic() + 60
        while not is_mongod_command(process_facts(process.pid)[1]):  # until the child has exec'd
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / "mongod.pid").write_text(f"{process.pid}\n")
        state = read_pid_file(str(tmp_path / "mongod.pid"))
        assert state.pid == process.pid and state.names_running_mongod
    finally:
        process.kill()
        process.wait()
    assert read_pid_file(str(tmp_path / "mongod.pid")).names_running_mongod is False
    assert read_pid_file(str(tmp_path / "absent.pid")).pid is None


def test_inspect_a_rotated_db_path(tmp_path: Path) -> None:
    write_storage_bson(tmp_path, {"kmip": {"keyId": "2"}})
    (tmp_path / "key.db").mkdir()
    (tmp_path / "key.db.rotated").mkdir()
    files = MemberFiles.inspect(str(tmp_path))
    assert files.exists and files.key_id == "2"
    assert files.key_db.present and files.key_db_rotated.present and not files.key_db_rotation.present
    assert files.key_db.inode == (tmp_path / "key.db").stat().st_ino
    assert files.storage_result() == {"storage_bson": True, "encryption": "kmip", "key_identifier": "2"}
    assert files.key_db_rotation.as_result() == {
        "path": str(tmp_path / "key.db.rotation"),
        "present": False,
        "modified": None,
    }


def test_inspect_a_missing_db_path(tmp_path: Path) -> None:
    files = MemberFiles.inspect(str(tmp_path / "absent"))
    assert files.exists is False and files.key_id is None and files.lock.exists is False
