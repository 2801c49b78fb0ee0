# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_member_stepdown against a scripted member (mockupdb) on 127.0.50.x."""

from __future__ import annotations

import pytest
from mockupdb import MockupDB, OpMsg

from ansible_collections.kmipops.psmdb.plugins.modules import mongod_member_stepdown
from unit.utils.module_runner import run_module
from unit.utils.scripted_mongod import HOST, hello, serve


def test_stepdown_sends_the_command_to_a_primary(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(OpMsg("replSetStepDown", 90, secondaryCatchUpPeriodSecs=15), {"ok": 1})
    result = run_module(
        mongod_member_stepdown,
        {"login_host": HOST, "login_port": member.port, "step_down_secs": 90, "secondary_catch_up_period_secs": 15},
        capsys,
    )
    assert result["changed"] is True and result["was_primary"] is True


def test_stepdown_check_mode_sends_nothing(member: MockupDB, capsys: pytest.CaptureFixture[str]) -> None:
    serve(member, hello(True), None)
    member.autoresponds(OpMsg("replSetStepDown"), {"ok": 0, "errmsg": "must not be sent in check mode"})
    checked = run_module(mongod_member_stepdown, {"login_host": HOST, "login_port": member.port}, capsys, check=True)
    assert checked["changed"] is True and not checked.get("failed")


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
