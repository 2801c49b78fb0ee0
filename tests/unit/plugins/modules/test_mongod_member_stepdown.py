# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_member_stepdown against a scripted member (mockupdb) on 127.0.50.x, and its wait for a new
primary against a scripted replica set behind a fake pymongo client."""

from __future__ import annotations

from typing import Any

import pytest
from mockupdb import MockupDB, OpMsg

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import waiter
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod import member as member_utils
from ansible_collections.kmipops.psmdb.plugins.modules import mongod_member_stepdown
from unit.plugins.module_utils._replset.fakes import Member, ReplicaSet
from unit.plugins.modules.test_mongod_replset_info import Clock
from unit.utils.module_runner import run_module
from unit.utils.scripted_mongod import HOST, hello, serve


def test_stepdown_sends_the_command_to_a_primary(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(OpMsg("replSetStepDown", 90, secondaryCatchUpPeriodSecs=15), {"ok": 1})
    result = run_module(
        mongod_member_stepdown,
        {
            "login_host": HOST,
            "login_port": member.port,
            "step_down_secs": 90,
            "secondary_catch_up_period_secs": 15,
            "wait_for_new_primary": False,
        },
        capsys,
    )
    assert result["changed"] is True and result["was_primary"] is True
    assert result["new_primary"] is None and result["waited_seconds"] == 0


def test_stepdown_check_mode_sends_nothing(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(OpMsg("replSetStepDown"), {"ok": 0, "errmsg": "must not be sent in check mode"})
    checked = run_module(mongod_member_stepdown, {"login_host": HOST, "login_port": member.port}, capsys, check=True)
    assert checked["changed"] is True and not checked.get("failed")
    assert checked["new_primary"] is None and checked["waited_seconds"] == 0, "check mode does not wait"


def test_stepdown_on_a_secondary_is_a_no_op(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(False), None)
    member.autoresponds(OpMsg("replSetStepDown"), {"ok": 0, "errmsg": "not primary"})
    result = run_module(mongod_member_stepdown, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["changed"] is False and result["was_primary"] is False and not result.get("failed")


def test_a_standalone_is_not_a_replica_set(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    """A standalone says it is a writable primary, but there is nothing to step down to."""
    serve(member, hello(True, set_name=None), None)
    member.autoresponds(
        OpMsg("replSetStepDown", 60, secondaryCatchUpPeriodSecs=10), {"ok": 0, "code": 76, "errmsg": "no --replSet"}
    )
    result = run_module(mongod_member_stepdown, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["failed"] is True and result["error_kind"] == "not_replica_set" and result["changed"] is False


def test_a_refused_step_down_fails_as_command_failed(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(
        OpMsg("replSetStepDown", 60, secondaryCatchUpPeriodSecs=10),
        {"ok": 0, "code": 262, "codeName": "ExceededTimeLimit", "errmsg": "No electable secondaries caught up"},
    )
    result = run_module(mongod_member_stepdown, {"login_host": HOST, "login_port": member.port}, capsys)
    assert result["failed"] is True and result["error_kind"] == "command_failed"
    assert "replSetStepDown" in result["msg"] and "No electable secondaries" in result["msg"]


@pytest.fixture
def replica_set(monkeypatch: pytest.MonkeyPatch) -> tuple[ReplicaSet, Clock]:
    rs = ReplicaSet(Member("db1:27017", "PRIMARY"), Member("db2:27017"), Member("db3:27017"))
    monkeypatch.setattr(member_utils, "MongoClient", rs.mongo_client)
    clock = Clock()
    monkeypatch.setattr(waiter, "time", clock)
    return rs, clock


def run(capsys: pytest.CaptureFixture[str], **args: Any) -> dict[str, Any]:
    return run_module(mongod_member_stepdown, {"login_host": "db1", **args}, capsys)


def test_waits_until_another_member_is_primary(
    replica_set: tuple[ReplicaSet, Clock], capsys: pytest.CaptureFixture[str]
) -> None:
    rs, clock = replica_set
    # no primary right after the step-down; db3 wins the election two polls later
    clock.on_sleep = [lambda: None, lambda: setattr(rs.members["db3:27017"], "state", "PRIMARY")]
    result = run(capsys, step_down_secs=90, secondary_catch_up_period_secs=15, wait_sleep=0.5)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["was_primary"] is True
    assert result["new_primary"] == "db3:27017" and result["waited_seconds"] == 1.0
    assert any(call.startswith("replSetStepDown (90,)") for call in rs.members["db1:27017"].calls)


@pytest.mark.usefixtures("replica_set")
def test_no_new_primary_in_time_is_a_timeout_that_says_it_stepped_down(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, wait_timeout=5, wait_sleep=1)
    assert result["failed"] is True and result["error_kind"] == "timeout"
    assert result["changed"] is True and result["was_primary"] is True
    assert result["last_view"]["primary"] is None and "a primary other than db1:27017" in result["msg"]


def test_the_stepped_down_member_is_found_again_through_the_other_members(
    replica_set: tuple[ReplicaSet, Clock], capsys: pytest.CaptureFixture[str]
) -> None:
    """The old primary closes its connections and may be slow to answer: hello.hosts are the seeds."""
    rs, clock = replica_set

    def old_primary_busy_db2_elected() -> None:
        rs.members["db1:27017"].down = True
        rs.members["db2:27017"].state = "PRIMARY"

    rs.on_stepdown = old_primary_busy_db2_elected
    result = run(capsys)
    assert not result.get("failed"), result
    assert result["new_primary"] == "db2:27017" and clock.now == 0


def test_bad_wait_options_fail_before_the_step_down(
    replica_set: tuple[ReplicaSet, Clock], capsys: pytest.CaptureFixture[str]
) -> None:
    rs, _ = replica_set
    result = run(capsys, wait_sleep=0.0)
    assert result["failed"] is True and result["option"] == "wait_sleep" and result["changed"] is False
    assert rs.members["db1:27017"].state == "PRIMARY" and rs.connections == []
