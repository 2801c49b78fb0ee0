# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_encryption_info run in-process: a stopped member, and a running one scripted with mockupdb."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator

import pytest
from mockupdb import MockupDB, OpMsg

from ansible_collections.kmipops.psmdb.plugins.modules import mongod_encryption_info
from unit.utils.module_runner import run_module
from unit.utils.rotation_member import FakeMember, make_member, normal_start, rotation
from unit.utils.scripted_mongod import HOST, free_port, hello, serve

PASSWORD = "Dummy-Info-10"


@pytest.fixture
def member_files() -> Iterator[FakeMember]:
    created = make_member("2", rotated=True)
    created.write_config(password=PASSWORD)
    created.write_log(
        normal_start(100, "1", created=True) + rotation(101, "1", "2") + normal_start(4321, "2", shutdown=False)
    )
    yield created
    shutil.rmtree(created.root, ignore_errors=True)


def test_a_stopped_member(member_files: FakeMember, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(mongod_encryption_info, {"config": str(member_files.config)}, capsys, check=True)
    assert result["changed"] is False and result["running"] is False
    assert result["key_identifier"] == "2" and result["key_identifier_sources"]["log"] == "2"
    assert result["server"] == {
        "queried": False,
        "reason": "mongod is not running (its dbPath's mongod.lock is not held)",
    }
    assert result["key_db_rotated"]["present"] is True and result["member_state"]["state"] == "ok"


@pytest.mark.parametrize("with_status", [False, True])
def test_a_running_member_is_asked_and_nothing_leaks(
    member_files: FakeMember, member: MockupDB, capsys: pytest.CaptureFixture[str], with_status: bool
) -> None:
    serve(member, hello(False), None)
    status = {"ok": 1, "pid": 4321}
    if with_status:
        status["encryptionAtRest"] = {"encryptionEnabled": True, "encryptionKeyId": {"kmip": {"keyId": "2"}}}
    member.autoresponds(OpMsg("serverStatus"), status)
    argv = ["mongod", "--config", str(member_files.config), f"--kmipClientCertificatePassword={PASSWORD}"]
    parsed = {"security": {"kmip": {"keyIdentifier": "2", "clientCertificatePassword": PASSWORD}}}
    member.autoresponds(OpMsg("getCmdLineOpts"), {"ok": 1, "argv": argv, "parsed": parsed})
    (member_files.db / "mongod.lock").write_text("4321\n")
    with open(member_files.db / "mongod.lock", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        result = run_module(
            mongod_encryption_info,
            {"config": str(member_files.config), "login_host": HOST, "login_port": member.port},
            capsys,
        )
    assert result["running"] is True and result["log"]["runs"][0]["outcome"] == "running"
    server = result["server"]
    assert server["same_process"] is True and server["encryption_at_rest_supported"] is with_status
    assert server["command_line"]["argv"][-1] == "--kmipClientCertificatePassword=********"
    assert result["key_identifier_sources"]["server_status"] == ("2" if with_status else None)
    assert PASSWORD not in capsys.readouterr().out + str(result)


def test_an_unreachable_running_member_is_a_result(
    member_files: FakeMember, capsys: pytest.CaptureFixture[str]
) -> None:
    (member_files.db / "mongod.lock").write_text("4321\n")
    with open(member_files.db / "mongod.lock", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        result = run_module(
            mongod_encryption_info,
            {"config": str(member_files.config), "login_host": HOST, "login_port": free_port(), "timeout_ms": 300},
            capsys,
        )
    assert result.get("failed") is not True
    assert result["server"]["error_kind"] == "unreachable" and result["key_identifier"] == "2"


def test_a_config_that_cannot_be_read_fails(member_files: FakeMember, capsys: pytest.CaptureFixture[str]) -> None:
    member_files.config.write_text("storage: [\n")
    result = run_module(mongod_encryption_info, {"config": str(member_files.config)}, capsys)
    assert result["failed"] is True and result["error_kind"] == "invalid_option" and result["option"] == "config"
