# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_replset.view: replSetGetStatus + replSetGetConfig documents -> the typed view of the set."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from bson.timestamp import Timestamp

from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.view import (
    build_view,
    oplog_capacity_window,
    oplog_fill,
    oplog_window,
)

T0 = 1_790_000_000  # seconds of the primary's last applied operation
EPOCH = datetime.datetime(1970, 1, 1)


def member(
    index: int,
    state: str,
    behind: float | None = 0,
    health: float = 1.0,
    self: bool = False,
    optime_kind: str = "ts",
) -> dict[str, Any]:
    """A members[] entry as mongod writes it; ``behind=None``: an optime mongod has not heard of."""
    doc: dict[str, Any] = {"_id": index, "name": f"db{index}:27017", "stateStr": state, "health": health}
    if behind is None:
        doc.update(optime={"ts": Timestamp(0, 0), "t": -1}, optimeDate=EPOCH)
    elif optime_kind == "ts":
        doc.update(
            optime={"ts": Timestamp(int(T0 - behind), 1), "t": 5},
            optimeDate=datetime.datetime.fromtimestamp(T0 - behind, datetime.UTC).replace(tzinfo=None),
        )
    elif optime_kind == "date":  # only the date (an arbiter has none; old formats)
        doc["optimeDate"] = datetime.datetime.fromtimestamp(T0 - behind, datetime.UTC).replace(tzinfo=None)
    if self:
        doc["self"] = True
    return doc


def status(*members: dict[str, Any], term: int | None = 5) -> dict[str, Any]:
    doc: dict[str, Any] = {"ok": 1, "set": "rs0", "members": list(members)}
    if term is not None:
        doc["term"] = term
    return doc


def config(*overrides: dict[str, Any], count: int = 3) -> dict[str, Any]:
    members = [{"_id": i, "host": f"db{i}:27017", "priority": 1, "votes": 1} for i in range(1, count + 1)]
    for entry in overrides:
        next(m for m in members if m["_id"] == entry["_id"]).update(entry)
    return {"ok": 1, "config": {"_id": "rs0", "version": 3, "members": members}}


def test_the_primary_view_of_a_healthy_set() -> None:
    view = build_view(
        status(member(1, "PRIMARY", self=True), member(2, "SECONDARY", 2), member(3, "SECONDARY", 0)),
        config(),
        Timestamp(T0 - 3600, 1),
        Timestamp(T0, 7),
    )
    assert view.set_name == "rs0" and view.primary == "db1:27017" and view.source == "db1:27017"
    assert view.from_primary and view.term == 5
    assert [(m.name, m.state_str, m.health, m.lag_seconds) for m in view.members] == [
        ("db1:27017", "PRIMARY", True, 0.0),
        ("db2:27017", "SECONDARY", True, 2.0),
        ("db3:27017", "SECONDARY", True, 0.0),
    ]
    assert view.healthy and view.majority_survives_one_down
    assert view.max_lag_seconds_seen == 2.0 and view.oplog_window_seconds == 3600.0
    assert view.lagging(1) == [view.member("db2:27017")] and view.lagging(2) == []


def test_a_down_member_has_no_lag_and_the_set_is_not_healthy() -> None:
    view = build_view(
        status(
            member(1, "PRIMARY", self=True),
            member(2, "(not reachable/healthy)", None, health=0.0),
            member(3, "SECONDARY"),
        ),
        config(),
    )
    down = view.member("db2:27017")
    assert down is not None and down.health is False and down.lag_seconds is None
    assert not view.healthy
    # 2 of 3 votes left, majority 2: one more data-bearing member down leaves 1
    assert not view.majority_survives_one_down
    assert view.oplog_window_seconds is None, "not read: unknown, not zero"


def test_a_member_the_primary_last_heard_of_long_ago_is_not_caught_up_by_its_old_optime() -> None:
    """A restarted member is first seen with health 1 and its optime as of its shutdown."""
    view = build_view(
        status(member(1, "PRIMARY", self=True), member(2, "SECONDARY", 45), member(3, "SECONDARY")), config()
    )
    assert view.member("db2:27017").lag_seconds == 45.0  # type: ignore[union-attr]


def test_lag_is_never_negative() -> None:
    """A secondary's optime as reported can be newer than the primary's own (heartbeat timing)."""
    view = build_view(
        status(member(1, "PRIMARY", self=True), member(2, "SECONDARY", -3), member(3, "SECONDARY")), config()
    )
    assert view.member("db2:27017").lag_seconds == 0.0  # type: ignore[union-attr]


def test_lag_from_optime_date_when_there_is_no_ts() -> None:
    view = build_view(
        status(member(1, "PRIMARY", self=True, optime_kind="date"), member(2, "SECONDARY", 4, optime_kind="date")),
        config(count=2),
    )
    assert view.member("db2:27017").lag_seconds == 4.0  # type: ignore[union-attr]


def test_without_a_primary_no_lag_is_known() -> None:
    view = build_view(
        status(member(1, "SECONDARY", self=True), member(2, "SECONDARY", 1), member(3, "SECONDARY")), config()
    )
    assert view.primary is None and not view.from_primary and not view.healthy
    assert all(m.lag_seconds is None for m in view.members) and view.max_lag_seconds_seen is None


def test_a_secondary_view_is_not_the_primary_view() -> None:
    view = build_view(
        status(member(1, "PRIMARY"), member(2, "SECONDARY", 1, self=True), member(3, "SECONDARY")), config()
    )
    assert view.primary == "db1:27017" and view.source == "db2:27017" and not view.from_primary


def test_configuration_settings_and_arbiters() -> None:
    view = build_view(
        status(
            member(1, "PRIMARY", self=True),
            member(2, "SECONDARY", 1),
            {"_id": 3, "name": "db3:27017", "stateStr": "ARBITER", "health": 1.0},
            member(4, "SECONDARY", 0),
        ),
        config(
            {"_id": 2, "priority": 0, "hidden": True, "votes": 1},
            {"_id": 3, "arbiterOnly": True, "priority": 0},
            {"_id": 4, "votes": 0, "priority": 0},
            count=4,
        ),
    )
    hidden, arbiter, nonvoter = view.member("db2:27017"), view.member("db3:27017"), view.member("db4:27017")
    assert hidden is not None and hidden.hidden and hidden.priority == 0.0 and hidden.votes == 1
    assert arbiter is not None and arbiter.arbiter_only and arbiter.lag_seconds is None and arbiter.healthy
    assert nonvoter is not None and nonvoter.votes == 0
    assert view.healthy
    # votes 3, majority 2: losing one voting data-bearing member leaves 2 (the arbiter votes)
    assert view.majority_survives_one_down
    assert [m.name for m in view.lagging(10)] == [], "arbiters have no lag and are not lagging"


def test_majority_with_one_more_down_counts_the_worst_member() -> None:
    """5 voters, one down: 4 healthy votes, majority 3, one more down leaves 3: survives."""
    members = [member(1, "PRIMARY", self=True), member(2, "(not reachable/healthy)", None, 0.0)]
    members += [member(i, "SECONDARY") for i in (3, 4, 5)]
    assert build_view(status(*members), config(count=5)).majority_survives_one_down
    members[2] = member(3, "(not reachable/healthy)", None, 0.0)
    assert not build_view(status(*members), config(count=5)).majority_survives_one_down


def test_without_config_settings_take_mongod_defaults() -> None:
    view = build_view(status(member(1, "PRIMARY", self=True), member(2, "SECONDARY")))
    assert all(m.votes == 1 and m.priority == 1.0 and not m.hidden for m in view.members)


def test_term_from_the_primary_optime_when_status_has_none() -> None:
    view = build_view(status(member(1, "PRIMARY", self=True), member(2, "SECONDARY"), term=None), config(count=2))
    assert view.term == 5


def test_as_result_marks_the_member_the_module_talked_to() -> None:
    view = build_view(status(member(1, "PRIMARY", self=True), member(2, "SECONDARY", 1)), config(count=2))
    result = view.as_result("db2:27017")
    assert result["self"] == "db2:27017" and result["primary"] == "db1:27017"
    assert [m["is_self"] for m in result["members"]] == [False, True]
    assert set(result["members"][0]) == {
        "name",
        "state_str",
        "health",
        "lag_seconds",
        "priority",
        "votes",
        "hidden",
        "arbiter_only",
        "is_self",
    }
    assert "db2:27017 SECONDARY, lag 1s" in view.summary()


@pytest.mark.parametrize(
    ("first", "last", "window"),
    [
        (Timestamp(100, 1), Timestamp(160, 9), 60.0),
        (None, Timestamp(1, 1), None),
        (Timestamp(0, 0), Timestamp(5, 1), None),
    ],
)
def test_oplog_window(first: Any, last: Any, window: float | None) -> None:
    assert oplog_window(first, last) == window


@pytest.mark.parametrize(
    ("stats", "fill"),
    [
        ({"size": 50, "maxSize": 200}, 0.25),
        ({"size": 300, "maxSize": 200}, 1.5),  # an oplog past its size (it keeps the commit point)
        ({"size": 50}, None),
        ({"size": 50, "maxSize": 0}, None),
        (None, None),
    ],
)
def test_oplog_fill(stats: dict[str, Any] | None, fill: float | None) -> None:
    assert oplog_fill(stats) == fill


@pytest.mark.parametrize(
    ("window", "fill", "capacity"),
    [
        (3600.0, 1.0, 3600.0),  # full: the window is what it holds
        (3600.0, 1.5, 3600.0),
        (3600.0, 0.25, 14400.0),  # a quarter full: 4 x as long at the same write rate
        (3600.0, None, 3600.0),  # fill unknown: only the window
        (3600.0, 0.0, 3600.0),  # nothing written: no rate to go by
        (None, 0.5, None),
    ],
)
def test_oplog_capacity_window(window: float | None, fill: float | None, capacity: float | None) -> None:
    assert oplog_capacity_window(window, fill) == capacity
