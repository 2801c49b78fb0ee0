# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The work of mongod_replset_info: read the primary's view, optionally wait for a condition."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipOpsError,
    MongodUnreachableError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import check_host, check_hosts
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.waiter import (
    WAIT_ARGSPEC,
    Waited,
    Waiter,
    WaitTimeoutError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.conditions import WAIT_FOR_CHOICES, Condition
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.observer import Observation, ReplsetObserver

#: the options of mongod_replset_info besides the mongod connection
REPLSET_INFO_ARGSPEC: dict[str, dict[str, Any]] = {
    "seeds": {"type": "list", "elements": "str", "default": []},
    "member": {"type": "str"},
    "wait_for": {"type": "str", "default": "none", "choices": list(WAIT_FOR_CHOICES)},
    "not_member": {"type": "bool", "default": False},
    "max_lag_seconds": {"type": "int", "default": 10},
    "member_down_timeout": {"type": "int", "default": 0},
    **WAIT_ARGSPEC,
}

#: the returns when no member answered
NO_VIEW: dict[str, Any] = {
    "set_name": None,
    "primary": None,
    "term": None,
    "members": [],
    "self": None,
    "healthy": False,
    "majority_survives_one_down": False,
    "max_lag_seconds_seen": None,
    "oplog_window_seconds": None,
}


class MemberDownError(KmipOpsError):
    """wait_for=member_caught_up: the primary saw the member down for longer than member_down_timeout."""

    kind = "member_down"

    def __init__(self, member: str, down_s: float, timeout_s: float, last_description: str) -> None:
        #: secret-free facts the caller adds to the failure (``last_view``)
        self.extra: dict[str, Any] = {}
        self.down_s = down_s
        self.last_description = last_description
        super().__init__(
            f"the primary has seen {member} down (not reachable) for {down_s:.1f}s, longer than member_down_timeout "
            f"{timeout_s:g}s: its mongod did not come up (see its log); last seen: {last_description}"
        )

    def details(self) -> dict[str, Any]:
        return {"down_seconds": round(self.down_s, 3), "last_observed": self.last_description, **self.extra}


class DownClock:
    """How long the primary has seen the awaited member down without a break; ``MemberDownError`` past the limit.

    Down is health 0 on the primary's view; any poll that sees it up (whatever its state: STARTUP2 during an
    initial sync counts as up) starts the count again; a poll without a primary's view changes nothing.
    """

    def __init__(self, condition: Condition, timeout_s: float, clock: Callable[[], float]) -> None:
        self.condition = condition
        self.timeout_s = timeout_s
        self.clock = clock
        self.since: float | None = None

    def check(self, observation: Observation) -> None:
        view = observation.view
        target = self.condition.target(observation)
        if self.timeout_s <= 0 or view is None or not view.from_primary or target is None:
            return
        member = view.member(target)
        if member is None:
            return
        if member.health:
            self.since = None
            return
        now = self.clock()
        if self.since is None:
            self.since = now
        elif now - self.since > self.timeout_s:
            raise MemberDownError(target, now - self.since, self.timeout_s, self.condition.describe(observation))


class ReplsetInfoModule(MongodMemberModule):
    """mongod_replset_info's module: its result has a key ``self``, which
    ``AnsibleModule.exit_json(self, **kwargs)`` cannot take as a keyword."""

    def exit_json(self, /, **kwargs: Any) -> NoReturn:
        # AnsibleModule.exit_json's body (ansible-core 2.17 to 2.19), with a positional-only receiver
        self.do_cleanup_files()
        self._return_formatted(kwargs)
        sys.exit(0)  # pylint: disable=ansible-bad-function  # this IS exit_json


def report(observation: Observation) -> dict[str, Any]:
    """The returns for one observation (the view it holds, or nulls)."""
    if observation.view is None:
        return {**NO_VIEW, "self": observation.self_name}
    return observation.view.as_result(observation.self_name)


def condition_from_params(params: dict[str, Any]) -> Condition:
    # host:port as in the set config; checked here so a bad one is refused before any connection
    check_hosts("seeds", params["seeds"])
    if params.get("member") is not None:
        check_host("member", params["member"])
    if params["max_lag_seconds"] < 0:
        raise InvalidOptionError("max_lag_seconds", f"must be 0 or more, got {params['max_lag_seconds']}")
    if params["not_member"] and params["wait_for"] != "primary":
        raise InvalidOptionError("not_member", "only applies to wait_for=primary")
    if params.get("member_down_timeout", 0) < 0:
        raise InvalidOptionError("member_down_timeout", f"must be 0 or more, got {params['member_down_timeout']}")
    if params.get("member_down_timeout", 0) > 0 and params["wait_for"] != "member_caught_up":
        raise InvalidOptionError("member_down_timeout", "only applies to wait_for=member_caught_up")
    return Condition(params["wait_for"], params.get("member"), params["not_member"], params["max_lag_seconds"])


def replset_info(
    params: dict[str, Any],
    check_mode: bool,
    observer_factory: Callable[..., ReplsetObserver] = ReplsetObserver,
    waiter_factory: Callable[..., Waiter] = Waiter.from_params,
) -> dict[str, Any]:
    condition = condition_from_params(params)
    waiter = waiter_factory(params)  # checks wait_timeout and wait_sleep before any connection
    waiting = condition.wait_for != "none" and not check_mode
    with observer_factory(params, params["seeds"], want_login_member=params.get("member") is None) as observer:
        if not waiting:
            observation = observer.observe()
            if observation.view is None:
                raise MongodUnreachableError(observer.login_address, observation.describe())
            return {
                "changed": False,
                **report(observation),
                "condition_met": condition.satisfied(observation),
                "waited_seconds": 0.0,
            }
        down = DownClock(condition, float(params.get("member_down_timeout", 0)), waiter.clock)
        last: list[Observation] = []

        def satisfied(observation: Observation) -> bool:
            last[:] = [observation]
            if condition.satisfied(observation):
                return True
            down.check(observation)
            return False

        try:
            waited = waiter.until(observer.observe, satisfied, condition.describe, condition.what())
        except WaitTimeoutError as error:
            error.extra["last_view"] = {**report(error.last), "waited_seconds": round(error.waited_s, 3)}
            raise
        except MemberDownError as error:
            error.extra["last_view"] = report(last[0])
            raise
    return {
        "changed": False,
        **report(waited.value),
        "condition_met": True,
        "waited_seconds": round(waited.waited_s, 3),
    }


def wait_for_new_primary(
    params: dict[str, Any],
    old_primary: str,
    seeds: list[str],
    waiter: Waiter,
    observer_factory: Callable[..., ReplsetObserver] = ReplsetObserver,
) -> Waited[Observation]:
    """After ``old_primary`` stepped down: the first observation whose primary is another member."""
    condition = Condition("primary", old_primary, not_member=True)
    with observer_factory(params, seeds) as observer:
        try:
            return waiter.until(observer.observe, condition.satisfied, condition.describe, condition.what())
        except WaitTimeoutError as error:
            error.extra["last_view"] = {**report(error.last), "waited_seconds": round(error.waited_s, 3)}
            raise
