# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_replset.conditions: every wait_for holds only on the primary's view."""

from __future__ import annotations

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.conditions import Condition
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.observer import Observation
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.view import MemberView, ReplsetView


def view(*members: MemberView, source: str | None = "db1:27017", primary: str | None = "db1:27017") -> ReplsetView:
    return ReplsetView("rs0", source, primary, 3, members)


def m(
    name: str, state: str = "SECONDARY", health: bool = True, lag: float | None = 0.0, arbiter: bool = False
) -> MemberView:
    return MemberView(name, state, health, lag, arbiter_only=arbiter)


PRIMARY = m("db1:27017", "PRIMARY")


def seen(*members: MemberView, login: str | None = "db2:27017", **kwargs: str | None) -> Observation:
    return Observation(view(*members, **kwargs), login, login)


@pytest.mark.parametrize(
    ("db2", "met"),
    [
        (m("db2:27017"), True),
        (m("db2:27017", lag=10), True),
        (m("db2:27017", lag=10.5), False),
        (m("db2:27017", lag=None), False),
        (m("db2:27017", "RECOVERING"), False),
        (m("db2:27017", "STARTUP2"), False),
        (m("db2:27017", "(not reachable/healthy)", health=False, lag=None), False),
        (m("db2:27017", "PRIMARY"), True),
    ],
)
def test_member_caught_up(db2: MemberView, met: bool) -> None:
    assert Condition("member_caught_up", "db2:27017").satisfied(seen(PRIMARY, db2)) is met


def test_member_caught_up_needs_the_primary_view() -> None:
    """A secondary's own opinion of itself never ends the wait."""
    observation = seen(PRIMARY, m("db2:27017"), source="db2:27017")
    condition = Condition("member_caught_up", "db2:27017")
    assert not condition.satisfied(observation)
    assert condition.describe(observation).startswith("no primary's view")
    assert not condition.satisfied(Observation(None, None, None, {"db2:27017": "refused"}))


def test_the_default_member_is_the_login_member_once_known() -> None:
    condition = Condition("member_caught_up")
    assert condition.satisfied(seen(PRIMARY, m("db2:27017")))
    unknown = seen(PRIMARY, m("db2:27017"), login=None)
    assert not condition.satisfied(unknown) and "not known yet" in condition.describe(unknown)


def test_a_member_the_primary_does_not_know_is_an_invalid_option() -> None:
    with pytest.raises(InvalidOptionError) as raised:
        Condition("member_caught_up", "db9:27017").satisfied(seen(PRIMARY, m("db2:27017")))
    assert raised.value.option == "member" and "db1:27017, db2:27017" in str(raised.value)


def test_primary_and_not_member() -> None:
    assert Condition("primary").satisfied(seen(PRIMARY))
    assert not Condition("primary", "db1:27017", not_member=True).satisfied(seen(PRIMARY, m("db2:27017")))
    new = seen(m("db1:27017"), m("db2:27017", "PRIMARY"), source="db2:27017", primary="db2:27017")
    assert Condition("primary", "db1:27017", not_member=True).satisfied(new)
    assert not Condition("primary").satisfied(seen(m("db1:27017"), primary=None))


def test_set_healthy() -> None:
    condition = Condition("set_healthy", max_lag_seconds=5)
    arbiter = m("db3:27017", "ARBITER", lag=None, arbiter=True)
    assert condition.satisfied(seen(PRIMARY, m("db2:27017", lag=5), arbiter))
    lagging = seen(PRIMARY, m("db2:27017", lag=6), arbiter)
    assert not condition.satisfied(lagging) and condition.describe(lagging).startswith("lagging: db2:27017")
    assert not condition.satisfied(seen(PRIMARY, m("db2:27017", "RECOVERING")))


def test_none_always_holds_and_every_condition_says_what_it_waits_for() -> None:
    assert Condition("none").satisfied(Observation(None, None, None))
    assert "db2:27017" in Condition("member_caught_up", "db2:27017", max_lag_seconds=3).what()
    assert "lag <= 3s" in Condition("member_caught_up", "db2:27017", max_lag_seconds=3).what()
    assert Condition("primary", "db1:27017", not_member=True).what() == "a primary other than db1:27017"
