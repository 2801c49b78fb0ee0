# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_replset_info in-process, against a scripted replica set behind a fake pymongo client."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import waiter
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod import member
from ansible_collections.kmipops.psmdb.plugins.modules import mongod_replset_info
from unit.plugins.module_utils._replset.fakes import Member, ReplicaSet
from unit.utils.module_runner import run_module

DOWN = ("(not reachable/healthy)", 0.0, None)
RETURNS = {
    "set_name",
    "primary",
    "term",
    "members",
    "self",
    "healthy",
    "majority_survives_one_down",
    "max_lag_seconds_seen",
    "oplog_window_seconds",
    "waited_seconds",
}


class Clock:
    """time.monotonic and time.sleep for the waiter: sleeping advances the clock and runs ``on_sleep``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[Any] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()


@pytest.fixture
def rs(monkeypatch: pytest.MonkeyPatch) -> ReplicaSet:
    replica_set = ReplicaSet(Member("db1:27017", "PRIMARY"), Member("db2:27017"), Member("db3:27017"))
    monkeypatch.setattr(member, "MongoClient", replica_set.mongo_client)
    return replica_set


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(waiter, "time", fake)
    return fake


def run(capsys: pytest.CaptureFixture[str], check: bool = False, **args: Any) -> dict[str, Any]:
    return run_module(mongod_replset_info, {"login_host": "db2", **args}, capsys, check=check)


def test_reads_the_set_from_its_primary(rs: ReplicaSet, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys)
    assert not result.get("failed"), result
    assert set(result) >= RETURNS and result["changed"] is False
    assert result["primary"] == "db1:27017" and result["self"] == "db2:27017" and result["set_name"] == "rs0"
    assert result["healthy"] is True and result["majority_survives_one_down"] is True
    assert result["waited_seconds"] == 0 and result["condition_met"] is True
    assert [m["is_self"] for m in result["members"]] == [False, True, False]
    assert result["members"][1] == {
        "name": "db2:27017",
        "state_str": "SECONDARY",
        "health": True,
        "lag_seconds": 0.0,
        "priority": 1.0,
        "votes": 1,
        "hidden": False,
        "arbiter_only": False,
        "is_self": True,
    }


def test_member_caught_up_waits_for_the_primary_not_for_the_member(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The member is up and calls itself SECONDARY; the primary still sees it down, then behind."""
    primary = rs.members["db1:27017"]
    primary.sees["db2:27017"] = DOWN
    clock.on_sleep = [
        lambda: primary.sees.update({"db2:27017": ("SECONDARY", 1.0, 40)}),
        lambda: primary.sees.update({"db2:27017": ("SECONDARY", 1.0, 3)}),
    ]
    result = run(capsys, wait_for="member_caught_up", max_lag_seconds=5, wait_sleep=2)
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 4 and result["condition_met"] is True
    assert result["members"][1]["lag_seconds"] == 3.0 and result["max_lag_seconds_seen"] == 3.0


def test_member_down_the_seeds_carry_the_wait(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    rs.members["db2:27017"].down = True
    rs.members["db1:27017"].sees["db2:27017"] = DOWN

    def back() -> None:
        rs.members["db2:27017"].down = False
        rs.members["db1:27017"].sees.pop("db2:27017")

    clock.on_sleep = [lambda: None, back]
    result = run(capsys, member="db2:27017", seeds=["db3:27017", "db1:27017"], wait_for="member_caught_up")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 2 and result["self"] == "db3:27017"


def test_timeout_fails_with_the_last_view(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    result = run(capsys, wait_for="member_caught_up", wait_timeout=10, wait_sleep=3)
    assert result["failed"] is True and result["error_kind"] == "timeout"
    assert "db2:27017 is down" in result["msg"] and "wait_timeout 10s" in result["msg"]
    assert result["waited_seconds"] == 10 and "db2:27017 down" in result["last_observed"]
    last = result["last_view"]
    assert set(last) >= RETURNS and last["primary"] == "db1:27017" and last["healthy"] is False
    assert last["members"][1]["health"] is False and last["members"][1]["lag_seconds"] is None


def test_member_down_too_long_fails_before_the_wait_timeout(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mongod that exited at its start: the primary sees it down on every poll."""
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    result = run(capsys, wait_for="member_caught_up", member_down_timeout=5, wait_timeout=600, wait_sleep=2)
    assert result["failed"] is True and result["error_kind"] == "member_down"
    assert "db2:27017 down" in result["msg"] and "member_down_timeout 5s" in result["msg"]
    assert result["down_seconds"] == 6 and clock.now == 6
    assert result["last_view"]["members"][1]["health"] is False


def test_member_up_in_startup2_resets_the_down_count(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Down, then up syncing (STARTUP2) for long, then SECONDARY: a long initial sync is no failure."""
    primary = rs.members["db1:27017"]
    primary.sees["db2:27017"] = DOWN
    syncing = [lambda: primary.sees.update({"db2:27017": ("STARTUP2", 1.0, None)})] + [lambda: None] * 10
    clock.on_sleep = [lambda: None, *syncing, lambda: primary.sees.update({"db2:27017": ("SECONDARY", 1.0, 1)})]
    result = run(capsys, wait_for="member_caught_up", member_down_timeout=3, wait_sleep=2)
    assert not result.get("failed"), result
    assert result["condition_met"] is True and result["waited_seconds"] == 26


def test_member_down_timeout_only_with_member_caught_up(rs: ReplicaSet, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, wait_for="set_healthy", member_down_timeout=5)
    assert result["failed"] is True and result["error_kind"] == "invalid_option"
    assert result["option"] == "member_down_timeout" and rs.connections == []


def test_primary_not_member_waits_for_another_primary(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    def elect_db3() -> None:
        rs.members["db1:27017"].state = "SECONDARY"
        rs.members["db3:27017"].state = "PRIMARY"

    clock.on_sleep = [elect_db3]
    result = run(capsys, login_host="db1", wait_for="primary", not_member=True)
    assert not result.get("failed"), result
    assert result["primary"] == "db3:27017" and result["waited_seconds"] == 1


def test_set_healthy_waits_for_every_member(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    rs.members["db1:27017"].sees["db3:27017"] = ("SECONDARY", 1.0, 30)
    clock.on_sleep = [lambda: rs.members["db1:27017"].sees.clear()]
    result = run(capsys, wait_for="set_healthy")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 1 and result["healthy"] is True


def test_check_mode_reads_once_and_does_not_wait(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    result = run(capsys, check=True, wait_for="member_caught_up")
    assert not result.get("failed"), result
    assert result["condition_met"] is False and result["waited_seconds"] == 0 and clock.now == 0


def test_unknown_member_is_an_invalid_option(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, member="db9:27017", wait_for="member_caught_up")
    assert result["failed"] is True and result["error_kind"] == "invalid_option" and result["option"] == "member"
    assert "db1:27017, db2:27017, db3:27017" in result["msg"] and clock.now == 0


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ({"max_lag_seconds": -1}, "max_lag_seconds"),
        ({"wait_timeout": 0, "wait_for": "primary"}, "wait_timeout"),
        ({"wait_sleep": 0.0}, "wait_sleep"),
        ({"not_member": True, "wait_for": "set_healthy"}, "not_member"),
        ({"seeds": ["db1:x"]}, "seeds"),
    ],
)
def test_bad_options_fail_before_any_connection(
    rs: ReplicaSet, capsys: pytest.CaptureFixture[str], args: dict[str, Any], option: str
) -> None:
    result = run(capsys, **args)
    assert result["failed"] is True and result["error_kind"] == "invalid_option" and result["option"] == option
    assert rs.connections == []


def test_nothing_answers_without_a_wait_is_unreachable(rs: ReplicaSet, capsys: pytest.CaptureFixture[str]) -> None:
    for m in rs.members.values():
        m.down = True
    result = run(capsys, seeds=["db1:27017"])
    assert result["failed"] is True and result["error_kind"] == "unreachable" and result["member"] == "db2:27017"


def test_nothing_answers_while_waiting_is_a_poll_result(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    for m in rs.members.values():
        m.down = True

    def all_up() -> None:
        for m in rs.members.values():
            m.down = False

    clock.on_sleep = [lambda: None, all_up]
    result = run(capsys, seeds=["db1:27017"], wait_for="set_healthy")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 2


def test_wrong_credentials_fail_even_while_waiting(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rs.members["db2:27017"].auth_failed = True
    result = run(capsys, wait_for="set_healthy", login_user="admin", login_password="Sekr1t")
    assert result["failed"] is True and result["error_kind"] == "auth_failed" and clock.now == 0
    assert "Sekr1t" not in str(result)
