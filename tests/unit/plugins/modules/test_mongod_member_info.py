# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_member_info and mongod_member_stepdown against a mockupdb member on 127.0.50.x."""

from __future__ import annotations

import datetime
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from mockupdb import Command, MockupDB, OpMsg

from ansible_collections.kmipops.psmdb.plugins.module_utils.mongod_member import connection_warnings
from ansible_collections.kmipops.psmdb.plugins.modules import mongod_member_info, mongod_member_stepdown

HOST = "127.0.50.11"
NOW = datetime.datetime(2026, 11, 27, 23, 0, 0)


def hello(primary: bool, set_name: str | None = "rs0") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ismaster": primary,
        "isWritablePrimary": primary,
        "secondary": not primary,
        "helloOk": True,
        "minWireVersion": 0,
        "maxWireVersion": 21,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000,
    }
    if set_name:
        doc.update(setName=set_name, hosts=["db1:27017", "db2:27017", "db3:27017"], primary="db1:27017")
    return doc


def status(states: list[tuple[str, int, float]], my_state: int) -> dict[str, Any]:
    """``states``: (stateStr, health, seconds behind NOW) per member; member 2 is self."""
    members = []
    for index, (state_str, health, behind) in enumerate(states, start=1):
        member = {
            "_id": index,
            "name": f"db{index}:27017",
            "stateStr": state_str,
            "health": health,
            "optimeDate": NOW - datetime.timedelta(seconds=behind),
        }
        if index == 2:
            member["self"] = True
        members.append(member)
    return {"ok": 1, "set": "rs0", "myState": my_state, "members": members}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@pytest.fixture
def member() -> Iterator[MockupDB]:
    server = MockupDB(request_timeout=5)
    server._address = (HOST, 0)  # our loopback range instead of localhost
    server.run()
    try:
        yield server
    finally:
        server.stop()


def serve(server: MockupDB, hello_doc: dict[str, Any], rs_status: dict[str, Any] | None) -> None:
    for name in ("ismaster", "isMaster", "hello"):
        server.autoresponds(Command(name), hello_doc)
        server.autoresponds(OpMsg(name), hello_doc)
    if rs_status is None:
        server.autoresponds(OpMsg("replSetGetStatus"), {"ok": 0, "code": 76, "errmsg": "not running with --replSet"})
    else:
        server.autoresponds(OpMsg("replSetGetStatus"), rs_status)
    server.autoresponds(OpMsg("serverStatus"), {"ok": 1, "pid": 4321, "host": "db2:27017", "uptime": 12.0})
    server.autoresponds(OpMsg("endSessions"), {"ok": 1})


def run(module: Any, args: dict[str, Any], capsys: pytest.CaptureFixture[str], check: bool = False) -> dict:
    with patch_module_args({**args, "_ansible_check_mode": check}), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_secondary_with_a_healthy_majority(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 2.5), ("SECONDARY", 1, 0)], 2))
    result = run(mongod_member_info, {"host": HOST, "port": member.port}, capsys)
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
    result = run(mongod_member_info, {"host": HOST, "port": member.port}, capsys)
    assert result["reachable"] is True and result["healthy"] is True
    assert (result["pid"], result["process_host"], result["uptime_seconds"]) == (None, None, None)


def test_majority_lost_when_two_of_three_are_down(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("(not reachable/healthy)", 0, 0), ("SECONDARY", 1, 0), ("DOWN", 0, 0)], 2))
    result = run(mongod_member_info, {"host": HOST, "port": member.port}, capsys)
    assert result["healthy"] is True
    assert result["majority_healthy"] is False
    assert all(m["optime_lag_seconds"] is None for m in result["members"]), "no primary, no lag"


def test_recovering_member_is_not_healthy(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("RECOVERING", 1, 30), ("SECONDARY", 1, 0)], 3))
    result = run(mongod_member_info, {"host": HOST, "port": member.port}, capsys)
    assert result["state_str"] == "RECOVERING" and result["healthy"] is False
    assert result["majority_healthy"] is True


def test_standalone_is_not_a_replica_set(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True, set_name=None), None)
    result = run(mongod_member_info, {"host": HOST, "port": member.port}, capsys)
    assert result["reachable"] is True and result["replica_set"] is False and result["healthy"] is False


def test_unreachable_member_is_a_result_not_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    args = {"host": HOST, "port": free_port(), "timeout_ms": 300, "password": "Sekr1t", "username": "admin"}
    result = run(mongod_member_info, args, capsys)
    assert result.get("failed") is not True
    assert result["reachable"] is False and result["healthy"] is False and result["error"]
    assert "Sekr1t" not in json.dumps(result)
    failed = run(mongod_member_info, {**args, "fail_on_unreachable": True}, capsys)
    assert failed["failed"] is True and "unreachable" in failed["msg"]


def test_stepdown_sends_the_command_to_a_primary(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(OpMsg("replSetStepDown", 90, secondaryCatchUpPeriodSecs=15), {"ok": 1})
    result = run(
        mongod_member_stepdown,
        {"host": HOST, "port": member.port, "step_down_secs": 90, "secondary_catch_up_period_secs": 15},
        capsys,
    )
    assert result["changed"] is True and result["was_primary"] is True


def test_stepdown_check_mode_sends_nothing(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(OpMsg("replSetStepDown"), {"ok": 0, "errmsg": "must not be sent in check mode"})
    checked = run(mongod_member_stepdown, {"host": HOST, "port": member.port}, capsys, check=True)
    assert checked["changed"] is True and not checked.get("failed")


def test_stepdown_on_a_secondary_is_a_no_op(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), None)
    member.autoresponds(OpMsg("replSetStepDown"), {"ok": 0, "errmsg": "not primary"})
    result = run(mongod_member_stepdown, {"host": HOST, "port": member.port}, capsys)
    assert result["changed"] is False and result["was_primary"] is False and not result.get("failed")


def test_skipping_the_host_name_check_is_said() -> None:
    params = {"host": "db1", "port": 27017, "tls_allow_invalid_hostnames": False}
    assert connection_warnings(params) == []
    (warning,) = connection_warnings({**params, "tls_allow_invalid_hostnames": True})
    assert warning.startswith("tls_allow_invalid_hostnames:") and "db1:27017" in warning
