"""The ``mongod`` process as a service manager and an operator see it: exit codes, log lines, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from psmdb_emulator import storage
from psmdb_emulator.encryption import start_storage
from psmdb_emulator.lab import MONGOD, KmipAdmin, KmipLab, MongodProcess
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import parse_args

Start = Callable[..., MongodProcess]


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
    assert fatal["attr"]["error"]["what"] == "key reading failed"
    assert fatal["attr"]["error"]["reason"].startswith("Cannot start. Master encryption key is absent")
    assert shutting_down(process) == {"exitCode": 1001}


def test_encrypted_db_path_started_without_encryption_fails(mongod: Start, tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    storage.write_storage_metadata(db, {"kmip": {"keyId": "1"}})
    process = mongod()
    assert process.wait_exit() == 14
    assert process.entries(28595), process.tail()


def _first_start_in_process(kmip_lab: KmipLab, db: Path, log: Path) -> str:
    db.mkdir(exist_ok=True)
    logger = Logger(str(log))
    try:
        started = start_storage(parse_args(["--dbpath", str(db), *kmip_lab.kmip_args()]), logger)
    finally:
        logger.close()
    started.store.write_db("app", b"rows")
    assert started.key_id is not None
    return started.key_id


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
