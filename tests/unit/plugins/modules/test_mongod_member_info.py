# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_member_info against a scripted member (mockupdb) on 127.0.50.x."""

from __future__ import annotations

import json

import pytest
from mockupdb import MockupDB, OpMsg

from ansible_collections.kmipops.psmdb.plugins.modules import mongod_member_info
from unit.utils.module_runner import run_module
from unit.utils.scripted_mongod import HOST, free_port, hello, serve, status


def test_secondary_with_a_healthy_majority(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 2.5), ("SECONDARY", 1, 0)], 2))
    result = run_module(mongod_member_info, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["reachable"] is True and result["changed"] is False
    assert (result["state"], result["state_str"], result["is_primary"]) == (2, "SECONDARY", False)
    assert result["set_name"] == "rs0" and result["replica_set"] is True
    assert result["healthy"] is True and result["majority_healthy"] is True
    assert result["members"][1] == {
        "name": "db2:27017",
        "state_str": "SECONDARY",
        "health": 1,
        "self": True,
        "optime_lag_seconds": 2.5,
    }
    assert (result["pid"], result["process_host"], result["uptime_seconds"]) == (4321, "db2:27017", 12.0)


def test_process_is_unknown_when_server_status_is_not_allowed(
    member: MockupDB, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 0), ("SECONDARY", 1, 0)], 2))
    # the newest autoresponder wins
    member.autoresponds(OpMsg("serverStatus"), {"ok": 0, "code": 13, "errmsg": "not authorized on admin"})
    result = run_module(mongod_member_info, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["reachable"] is True and result["healthy"] is True
    assert (result["pid"], result["process_host"], result["uptime_seconds"]) == (None, None, None)


def test_majority_lost_when_two_of_three_are_down(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("(not reachable/healthy)", 0, 0), ("SECONDARY", 1, 0), ("DOWN", 0, 0)], 2))
    result = run_module(mongod_member_info, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["healthy"] is True
    assert result["majority_healthy"] is False
    assert all(m["optime_lag_seconds"] is None for m in result["members"]), "no primary, no lag"


def test_recovering_member_is_not_healthy(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("RECOVERING", 1, 30), ("SECONDARY", 1, 0)], 3))
    result = run_module(mongod_member_info, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["state_str"] == "RECOVERING" and result["healthy"] is False
    assert result["majority_healthy"] is True


def test_standalone_is_not_a_replica_set(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True, set_name=None), None)
    result = run_module(mongod_member_info, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["reachable"] is True and result["replica_set"] is False and result["healthy"] is False


def test_unreachable_member_is_a_result_not_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    args = {
        "login_host": HOST,
        "login_port": free_port(),
        "timeout_ms": 300,
        "login_password": "Sekr1t",
        "login_user": "admin",
    }
    result = run_module(mongod_member_info, args, capsys)
    assert result.get("failed") is not True
    assert result["reachable"] is False and result["healthy"] is False and result["error"]
    assert "Sekr1t" not in json.dumps(result)
    failed = run_module(mongod_member_info, {**args, "fail_on_unreachable": True}, capsys)
    assert failed["failed"] is True and "unreachable" in failed["msg"]


def test_wrong_credentials_fail_as_auth_failed(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 0), ("SECONDARY", 1, 0)], 2))
    refusal = {"ok": 0, "code": 18, "codeName": "AuthenticationFailed", "errmsg": "Authentication failed."}
    member.autoresponds("saslStart", refusal)
    args = {"login_host": HOST, "login_port": member.port, "login_user": "admin", "login_password": "Sekr1t"}
    result = run_module(mongod_member_info, args, capsys)
    assert result["failed"] is True and result["error_kind"] == "auth_failed"
    assert f"{HOST}:{member.port}" in result["msg"] and "Sekr1t" not in json.dumps(result)


def test_unreachable_with_fail_on_unreachable_says_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    args = {"login_host": HOST, "login_port": free_port(), "timeout_ms": 300, "fail_on_unreachable": True}
    result = run_module(mongod_member_info, args, capsys)
    assert result["failed"] is True and result["error_kind"] == "unreachable"
    quiet = run_module(mongod_member_info, {**args, "fail_on_unreachable": False}, capsys)
    assert quiet["reachable"] is False and quiet["error_kind"] == "unreachable" and not quiet.get("failed")


def test_a_refused_command_fails_as_command_failed(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), None)
    member.autoresponds(
        OpMsg("replSetGetStatus"), {"ok": 0, "code": 13, "codeName": "Unauthorized", "errmsg": "not authorized"}
    )
    result = run_module(mongod_member_info, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["failed"] is True and result["error_kind"] == "command_failed"
    assert "replSetGetStatus" in result["msg"] and "not authorized" in result["msg"]


def test_the_old_option_names_are_aliases(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    """host, port, username, password and auth_source stay accepted through 0.x."""
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 0), ("SECONDARY", 1, 0)], 2))
    member.autoresponds("saslStart", {"ok": 0, "code": 18, "codeName": "AuthenticationFailed", "errmsg": "no"})
    old = {"host": HOST, "port": member.port, "username": "u", "password": "p", "auth_source": "users"}
    result = run_module(mongod_member_info, old, capsys)
    assert result["error_kind"] == "auth_failed", "the user was passed on: pymongo tried to authenticate"
    assert result["member"] == f"{HOST}:{member.port}"
    assert run_module(mongod_member_info, {"host": HOST, "port": member.port}, capsys)["healthy"] is True
