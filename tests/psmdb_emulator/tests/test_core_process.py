"""The ``mongod`` process as a service manager and an operator see it: exit codes, log lines, signals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bson
import pytest
from pymongo import MongoClient

from psmdb_emulator import storage
from psmdb_emulator.encryption import MSG_KEY_ABSENT, EncryptionError, MasterKeyRotationCompleted, start_storage
from psmdb_emulator.lab import MONGOD, MONGOD_ADDRESS, KmipAdmin, KmipLab, MongodProcess, kmip_object_count
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import parse_args
from psmdb_emulator.testhooks import TEST_HOOK_ENV, TEST_HOOK_LOG_ID

Start = Callable[..., MongodProcess]
# mongod binds its port first (netbind.py): the processes started here without the fixture use these ports.
FORK_PORT = 27090
LOG_RENAME_PORT = 27095
FORKED = [sys.executable, str(MONGOD), "--fork", "--bind_ip", MONGOD_ADDRESS]


def shutting_down(process: MongodProcess) -> dict[str, object]:
    entries = process.entries(23138)
    assert entries, process.tail()
    return entries[-1]["attr"]


def test_version_prints_psmdb_version() -> None:
    result = subprocess.run([sys.executable, str(MONGOD), "--version"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "db version v7.0.14-8"


def test_bad_option_exits_2_with_mongod_message() -> None:
    result = subprocess.run(
        [sys.executable, str(MONGOD), "--kmipConnectTimeoutMS=1"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "BadValue: security.kmip.connectTimeoutMS must be greater than or equal to 1000, got 1",
        "try 'mongod --help' for more information",
    ]


def test_sigterm_is_a_clean_shutdown_with_exit_0(mongod: Start, tmp_path: Path) -> None:
    config = tmp_path / "mongod.conf"
    config.write_text("storage:\n  dbPath: " + str(tmp_path / "db") + "\n")
    process = mongod("-f", str(config), with_db_path=False)
    process.wait_for_log(23016)
    process.process.send_signal(signal.SIGTERM)
    assert process.wait_exit() == 0
    assert shutting_down(process) == {"exitCode": 0}
    assert process.entries(23377)[0]["attr"]["signal"] == signal.SIGTERM
    assert (tmp_path / "db" / "storage.bson").is_file()


def test_missing_db_path_exits_100(mongod: Start, tmp_path: Path) -> None:
    process = mongod("--dbpath", str(tmp_path / "nope"), with_db_path=False)
    assert process.wait_exit() == 100
    assert "NonExistentPath" in process.entries(20557)[0]["attr"]["error"]


def test_encryption_error_is_fatal_29120_and_exit_233(mongod: Start, kmip_lab: KmipLab) -> None:
    process = mongod(*kmip_lab.kmip_args(kmipKeyIdentifier="999999"))
    # 1001 & 0xFF: what the shell and systemd see for ExitCode::perconaDataAtRestEncryptionError
    assert process.wait_exit() == 233
    fatal = process.entries(29120)[0]
    assert (fatal["s"], fatal["msg"]) == ("F", "Data-at-Rest Encryption Error")
    assert fatal["attr"]["error"] == {
        "what": "Can't create encryption key database",
        "reason": {
            "what": "key reading failed",
            "reason": MSG_KEY_ABSENT,
            "keyManagementFacilityType": "KMIP server",
            "keyIdentifier": {"kmipKeyIdentifier": "999999"},
        },
        "encryptionKeyDatabaseDirectory": str(process.db_path / "key.db"),
    }
    assert shutting_down(process) == {"exitCode": 1001}


def test_encrypted_db_path_started_without_encryption_fails(mongod: Start, tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    storage.write_storage_metadata(db, {"kmip": {"keyId": "1"}})
    process = mongod()
    assert process.wait_exit() == 14
    assert process.entries(28595), process.tail()


def _start_in_process(kmip_lab: KmipLab, db: Path, log: Path, **flags: object) -> str:
    """One start-up of ``db`` in this process (same code as mongod); returns the key id in use."""
    db.mkdir(exist_ok=True)
    logger = Logger(str(log))
    try:
        started = start_storage(parse_args(["--dbpath", str(db), *kmip_lab.kmip_args(**flags)]), logger)
    finally:
        logger.close()
    if not started.store.read_db("app"):
        started.store.write_db("app", b"rows")
    assert started.store.read_db("app") == b"rows"
    assert started.key_id is not None
    return started.key_id


def _first_start_in_process(kmip_lab: KmipLab, db: Path, log: Path) -> str:
    return _start_in_process(kmip_lab, db, log)


def _stored_key_id(db: Path) -> str | None:
    return storage.stored_kmip_key_id(storage.read_storage_metadata(db))


def test_rotation_process_exits_0_after_logging_29111(mongod: Start, kmip_lab: KmipLab, tmp_path: Path) -> None:
    old_id = _first_start_in_process(kmip_lab, tmp_path / "db", tmp_path / "setup.log")
    process = mongod(*kmip_lab.kmip_args(kmipRotateMasterKey=True))
    assert process.wait_exit() == 0
    rotated = process.entries(29111)[0]["attr"]
    assert rotated["oldKeyIdentifier"] == {"kmipKeyIdentifier": old_id}
    assert shutting_down(process) == {"exitCode": 0}
    ids = process.log_ids()
    assert ids.index(29111) < ids.index(23138)
    assert 23016 not in ids  # it never accepted connections
    new_id = rotated["newKeyIdentifier"]["kmipKeyIdentifier"]
    assert storage.stored_kmip_key_id(storage.read_storage_metadata(tmp_path / "db")) == new_id


def test_polling_shuts_down_with_233_when_key_is_revoked(
    mongod: Start, kmip_lab: KmipLab, kmip_admin: KmipAdmin
) -> None:
    process = mongod(*kmip_lab.kmip_args(kmipKeyStatePollingSeconds=1))
    created = process.wait_for_log(29116)
    process.wait_for_log(23016)
    key_id = created["attr"]["keyIdentifier"]["kmipKeyIdentifier"]
    assert process.process.poll() is None
    kmip_admin.revoke(key_id)
    assert process.wait_exit() == 233
    assert process.entries(29122)[0]["attr"]["keyState"] == "Deactivated"
    assert shutting_down(process) == {"exitCode": 1001}


def test_fork_parent_exits_0_once_child_is_ready(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    pid_file = tmp_path / "mongod.pid"
    log = tmp_path / "forked.log"
    result = subprocess.run(
        [
            sys.executable,
            str(MONGOD),
            "--fork",
            "--dbpath",
            str(db),
            "--bind_ip",
            MONGOD_ADDRESS,
            "--port",
            str(FORK_PORT),
            "--logpath",
            str(log),
            "--pidfilepath",
            str(pid_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PSMDB_EMULATOR_NO_SERVER": "1", "PATH": "/usr/bin:/bin"},
    )
    child = int(pid_file.read_text())
    try:
        assert result.returncode == 0, result.stderr
        assert "child process started successfully, parent exiting" in result.stdout
        assert f"forked process: {child}" in result.stdout
    finally:
        os.kill(child, signal.SIGTERM)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and '"id":23138' not in log.read_text():
            time.sleep(0.05)
    assert '"exitCode":0' in log.read_text()


def _run_forked(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FORKED, "--port", str(FORK_PORT + 1), "--logpath", str(tmp_path / "forked.log"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PSMDB_EMULATOR_NO_SERVER": "1", "PYTHONWARNINGS": "ignore"},
    )


def test_i10_6_fork_with_rotation_exits_0_with_mongods_parent_lines(kmip_lab: KmipLab, tmp_path: Path) -> None:
    db = tmp_path / "db"
    old_id = _first_start_in_process(kmip_lab, db, tmp_path / "setup.log")
    result = _run_forked("--dbpath", str(db), *kmip_lab.kmip_args(kmipRotateMasterKey=True), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "about to fork child process, waiting until server is ready for connections."
    assert lines[1].startswith("forked process: ")
    assert lines[2] == "child process started successfully, parent exiting"
    log = (tmp_path / "forked.log").read_text()
    assert '"id":29111' in log and '"exitCode":0' in log
    assert _stored_key_id(db) not in (None, old_id)


def test_i10_6_fork_with_a_failing_child_reports_its_status(kmip_lab: KmipLab, tmp_path: Path) -> None:
    db = tmp_path / "db"
    _first_start_in_process(kmip_lab, db, tmp_path / "setup.log")
    (db / storage.ROTATION_DIR).mkdir()  # a leftover: the rotation fails with 1001
    result = _run_forked("--dbpath", str(db), *kmip_lab.kmip_args(kmipRotateMasterKey=True), tmp_path=tmp_path)
    assert result.returncode == 233  # 1001 & 0xFF, what the parent gets from waitpid
    assert result.stdout.splitlines()[2:] == [
        "ERROR: child process failed, exited with error number 233",
        'To see additional information in this output, start without the "--fork" option.',
    ]


@dataclass
class Interrupted:
    """What a rotation killed at a test hook step left behind."""

    db: Path
    old_id: str
    objects_before: int
    process: MongodProcess

    @property
    def new_id(self) -> str:
        return str(self.process.entries(29116)[0]["attr"]["keyIdentifier"]["kmipKeyIdentifier"])

    def key_dbs(self) -> list[str]:
        return sorted(path.name for path in self.db.glob("key.db*"))

    def restore_old_key_db(self, set_aside_as: str) -> None:
        """The recovery of psmdb-kmip.md s.4: key.db set aside, key.db.rotated back as key.db."""
        (self.db / storage.KEYSTORE_DIR).rename(self.db / set_aside_as)
        (self.db / storage.ROTATED_DIR).rename(self.db / storage.KEYSTORE_DIR)


def _rotation_interrupted_at(mongod: Start, kmip_lab: KmipLab, tmp_path: Path, step: str, action: str) -> Interrupted:
    """A rotation process stopped (SIGKILL) at ``step`` of PSMDB_EMULATOR_TEST_HOOK."""
    db = tmp_path / "db"
    old_id = _first_start_in_process(kmip_lab, db, tmp_path / "setup.log")
    objects = kmip_object_count(kmip_lab.servers["kmip1"])
    process = mongod(*kmip_lab.kmip_args(kmipRotateMasterKey=True), env={TEST_HOOK_ENV: f"{step}:{action}"})
    assert process.wait_for_log(TEST_HOOK_LOG_ID)["attr"] == {"step": step, "action": action}
    if action == "pause":
        process.process.send_signal(signal.SIGKILL)
    assert process.wait_exit() == -signal.SIGKILL
    assert 23138 not in process.log_ids()  # killed, not shut down
    assert _stored_key_id(db) == old_id
    return Interrupted(db, old_id, objects, process)


def test_i10_5_kill_during_the_clone_leaves_key_db_rotation_and_no_new_key(
    mongod: Start, kmip_lab: KmipLab, tmp_path: Path
) -> None:
    run = _rotation_interrupted_at(mongod, kmip_lab, tmp_path, "rotation-clone", "pause")
    assert run.key_dbs() == ["key.db", "key.db.rotation"]
    assert kmip_object_count(kmip_lab.servers["kmip1"]) == run.objects_before  # registered only after the clone
    # the member still starts on its old key; the leftover blocks the next rotation (exit 233)
    assert _start_in_process(kmip_lab, run.db, tmp_path / "after.log") == run.old_id
    refused = mongod(*kmip_lab.kmip_args(kmipRotateMasterKey=True))
    assert refused.wait_exit() == 233
    error = refused.entries(29120)[0]["attr"]["error"]
    assert error["reason"]["what"] == "Rotation key database directory already exists"
    # recovery (psmdb-kmip.md s.4): remove the leftover, rotate again
    shutil.rmtree(run.db / storage.ROTATION_DIR)
    with pytest.raises(MasterKeyRotationCompleted):
        _start_in_process(kmip_lab, run.db, tmp_path / "again.log", kmipRotateMasterKey=True)
    assert _stored_key_id(run.db) != run.old_id


def test_i10_5_crash_between_the_renames_recovers_from_key_db_rotated(
    mongod: Start, kmip_lab: KmipLab, tmp_path: Path
) -> None:
    run = _rotation_interrupted_at(mongod, kmip_lab, tmp_path, "rotation-swap", "crash")
    assert run.key_dbs() == ["key.db.rotated", "key.db.rotation"]
    registered = kmip_object_count(kmip_lab.servers["kmip1"])
    assert registered == run.objects_before + 1  # the new key (29116) was registered before the swap
    # no key.db: a normal start makes a new one, with yet another new key, that cannot open the data
    failed = mongod(*kmip_lab.kmip_args())
    assert failed.wait_exit() == 14, failed.tail()
    assert 28595 in failed.log_ids()
    assert kmip_object_count(kmip_lab.servers["kmip1"]) == registered + 1
    # recovery: set that keystore aside and put the old one back as key.db
    run.restore_old_key_db("key.db.failed-start")
    assert _start_in_process(kmip_lab, run.db, tmp_path / "after.log") == run.old_id


def test_i10_5_crash_before_storage_bson_recovers_with_either_key(
    mongod: Start, kmip_lab: KmipLab, tmp_path: Path
) -> None:
    run = _rotation_interrupted_at(mongod, kmip_lab, tmp_path, "rotation-metadata", "crash")
    assert run.key_dbs() == ["key.db", "key.db.rotated"]  # key.db is already under the new key
    with pytest.raises(EncryptionError) as refused:
        _start_in_process(kmip_lab, run.db, tmp_path / "fails.log")
    assert refused.value.key_error["what"] == "failed to open the encryption keys DB"
    # recovery A: storage.bson names the new key (the id from log 29116)
    saved = (run.db / "storage.bson").read_bytes()
    storage.replace_storage_encryption(run.db, {"kmip": {"keyId": run.new_id}})
    assert _start_in_process(kmip_lab, run.db, tmp_path / "new-key.log") == run.new_id
    # recovery B (from the same state): the old keystore back as key.db
    (run.db / "storage.bson").write_bytes(saved)
    run.restore_old_key_db("key.db.new")
    assert _start_in_process(kmip_lab, run.db, tmp_path / "old-key.log") == run.old_id


def test_i10_3_and_7_server_status_and_cmd_line_opts_of_a_running_member(
    mongod: Start, kmip_lab: KmipLab, tmp_path: Path
) -> None:
    # a dummy password: PSMDB shows clientCertificatePassword in getCmdLineOpts and in log 21951
    dummy = "dummy-kmip-password-not-a-secret"
    args = kmip_lab.kmip_args(kmipClientCertificatePassword=dummy)
    first = mongod(*args, with_server=True)
    first.wait_for_log(23016)
    key_id = first.entries(29116)[0]["attr"]["keyIdentifier"]["kmipKeyIdentifier"]
    port = int(first.process.args[first.process.args.index("--port") + 1])  # type: ignore[union-attr]
    with MongoClient(MONGOD_ADDRESS, port, directConnection=True, serverSelectionTimeoutMS=120_000) as client:
        status = client.admin.command("serverStatus")
        options = client.admin.command("getCmdLineOpts")
    assert "encryptionAtRest" not in status  # 7.0.14-8 has no such section
    assert options["parsed"]["security"]["kmip"]["clientCertificatePassword"] == dummy
    assert options["argv"][options["argv"].index("--kmipClientCertificatePassword") + 1] == dummy
    assert first.entries(21951)[0]["attr"]["options"]["security"]["kmip"]["clientCertificatePassword"] == dummy
    assert first.stop() == 0
    # the key in use without encryptionAtRest: storage.bson and the log
    assert bson.decode((first.db_path / "storage.bson").read_bytes())["storage"]["options"]["encryption"] == {
        "kmip": {"keyId": key_id}
    }
    # a newer build (opt-in) has the section
    newer = mongod(*args, with_server=True, env={storage.ENCRYPTION_STATUS_ENV: "1"})
    newer.wait_for_log(23016)
    port = int(newer.process.args[newer.process.args.index("--port") + 1])  # type: ignore[union-attr]
    with MongoClient(MONGOD_ADDRESS, port, directConnection=True, serverSelectionTimeoutMS=120_000) as client:
        status = client.admin.command("serverStatus")
    assert status["encryptionAtRest"] == {
        "encryptionEnabled": True,
        "encryptionCipherMode": "AES256-CBC",
        "encryptionKeyId": {"kmip": {"keyId": key_id}},
    }
    assert newer.stop() == 0


def test_i12_5a_a_held_port_stops_any_start_and_a_rotation_with_48_before_the_storage_engine(
    mongod: Start, kmip_lab: KmipLab, tmp_path: Path
) -> None:
    """mongod_main.cpp (7.0) sets up the transport layer (binds) before initializeStorageEngine: a port held by
    another process ends the start with 20568 and exit 48 before the dbPath lock, KMIP or the rotation."""
    db = tmp_path / "db"
    old_id = _first_start_in_process(kmip_lab, db, tmp_path / "setup.log")
    before = {name: (db / name).read_bytes() for name in ("storage.bson", "key.db/keystore.wt")}
    objects_before = kmip_object_count(kmip_lab.servers["kmip1"])
    # the fixture gives its n-th mongod port 27017 + n on MONGOD_ADDRESS: hold the first two
    with socket.create_server((MONGOD_ADDRESS, 27017)), socket.create_server((MONGOD_ADDRESS, 27018)):
        rotation = mongod(*kmip_lab.kmip_args(kmipRotateMasterKey=True))
        no_db_path = mongod("--dbpath", str(tmp_path / "missing"), with_db_path=False)
        assert rotation.wait_exit() == 48 and no_db_path.wait_exit() == 48  # not 100: the port comes first
    for process in (rotation, no_db_path):
        error = process.entries(20568)[0]
        assert (error["s"], error["c"], error["msg"]) == ("E", "CONTROL", "Error setting up listener")
        assert error["attr"]["error"] == {
            "code": 9001,
            "codeName": "SocketException",
            "errmsg": "Address already in use",
        }
        assert shutting_down(process) == {"exitCode": 48}
        assert not {20557, 22315, 29115, 29116, 29111} & set(process.log_ids())
    assert {name: (db / name).read_bytes() for name in before} == before
    assert not (db / storage.ROTATION_DIR).exists() and _stored_key_id(db) == old_id
    assert kmip_object_count(kmip_lab.servers["kmip1"]) == objects_before
    # the port free again, the same rotation runs
    assert mongod(*kmip_lab.kmip_args(kmipRotateMasterKey=True)).wait_exit() == 0


def test_i12_5b_log_append_false_renames_the_existing_log_instead_of_truncating_it(tmp_path: Path) -> None:
    """ServerLogRedirection (logv2, 4.4+): without logAppend an existing log becomes <path>.<UTC time> (log
    20697 on stdout) and a new file is started; with logAppend it is appended to."""
    db = tmp_path / "db"
    db.mkdir()
    log = tmp_path / "mongod.log"
    log.write_text('{"old":"run"}\n')
    argv = [sys.executable, str(MONGOD), "--dbpath", str(db), "--bind_ip", MONGOD_ADDRESS]
    argv += ["--port", str(LOG_RENAME_PORT), "--logpath", str(log)]
    env = {**os.environ, "PSMDB_EMULATOR_NO_SERVER": "1", "PYTHONWARNINGS": "ignore"}

    def listening() -> int:
        return log.read_text().count('"id":23016') if log.exists() else 0

    def run(*extra: str) -> str:
        started = listening() if "--logappend" in extra else 0
        process = subprocess.Popen([*argv, *extra], stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 300
        while listening() <= started and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        return stdout

    stdout = run()
    renamed = [path for path in tmp_path.iterdir() if path.name.startswith("mongod.log.")]
    assert len(renamed) == 1 and re.fullmatch(r"mongod\.log\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d", renamed[0].name)
    assert renamed[0].read_text() == '{"old":"run"}\n'
    assert '{"old":"run"}' not in log.read_text() and '"id":23138' in log.read_text()
    line = next(json.loads(text) for text in stdout.splitlines() if '"id":20697' in text)
    assert line["msg"] == "Renamed existing log file"
    assert line["attr"] == {"oldLogPath": str(log), "newLogPath": str(renamed[0])}
    first_run = log.read_text()
    assert "20697" not in run("--logappend")
    assert log.read_text().startswith(first_run) and log.read_text().count('"id":23138') == 2
