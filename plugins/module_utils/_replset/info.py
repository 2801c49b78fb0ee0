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
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.watch import MemberStoppedError, ServiceWatch

#: the options of mongod_replset_info besides the mongod connection
REPLSET_INFO_ARGSPEC: dict[str, dict[str, Any]] = {
    "seeds": {"type": "list", "elements": "str", "default": []},
    "member": {"type": "str"},
    "wait_for": {"type": "str", "default": "none", "choices": list(WAIT_FOR_CHOICES)},
    "not_member": {"type": "bool", "default": False},
    "max_lag_seconds": {"type": "int", "default": 10},
    "watch_service": {"type": "str"},
    "watch_config": {"type": "path"},
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
    "oplog_fill_ratio": None,
    "oplog_capacity_window_seconds": None,
}


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
    if params.get("watch_service") is not None:
        if not params["watch_service"].strip():
            raise InvalidOptionError("watch_service", "is empty (give the systemd unit of the member's mongod)")
        if params["wait_for"] != "member_caught_up":
            raise InvalidOptionError("watch_service", "only applies to wait_for=member_caught_up")
    if params.get("watch_config") is not None and params.get("watch_service") is None:
        raise InvalidOptionError("watch_config", "only applies with watch_service")
    return Condition(params["wait_for"], params.get("member"), params["not_member"], params["max_lag_seconds"])


def watch_from_params(
    params: dict[str, Any], systemctl: Callable[[], str] | None, journalctl: Callable[[], str | None] | None
) -> ServiceWatch | None:
    """The watch of the member's unit (option ``watch_service``), or None."""
    if not params.get("watch_service"):
        return None
    if systemctl is None:
        raise InvalidOptionError("watch_service", "systemctl is not available to this module run")
    return ServiceWatch(
        service=params["watch_service"],
        systemctl=systemctl,
        config=params.get("watch_config"),
        journalctl=journalctl or (lambda: None),
        member=params.get("member"),
    )


def replset_info(
    params: dict[str, Any],
    check_mode: bool,
    observer_factory: Callable[..., ReplsetObserver] = ReplsetObserver,
    waiter_factory: Callable[..., Waiter] = Waiter.from_params,
    systemctl: Callable[[], str] | None = None,
    journalctl: Callable[[], str | None] | None = None,
) -> dict[str, Any]:
    condition = condition_from_params(params)
    waiter = waiter_factory(params)  # checks wait_timeout and wait_sleep before any connection
    waiting = condition.wait_for != "none" and not check_mode
    watch = watch_from_params(params, systemctl, journalctl) if waiting else None
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
        seen: list[Observation] = []

        def observe() -> Observation:
            # one poll: the set as its primary sees it, then the member's own unit on this host
            observation = observer.observe()
            seen[:] = [observation]
            if watch is not None:
                watch.poll()
            return observation

        def hopeless(_observation: Observation) -> MemberStoppedError | None:
            return watch.hopeless(watch.last) if watch is not None else None

        started = waiter.clock()
        try:
            waited = waiter.until(observe, condition.satisfied, condition.describe, condition.what(), hopeless)
        except WaitTimeoutError as error:
            error.extra["last_view"] = {**report(error.last), "waited_seconds": round(error.waited_s, 3)}
            if watch is not None and watch.last is not None:
                error.extra["service"] = watch.last.as_result()
            raise
        except MemberStoppedError as error:
            waited_s = round(waiter.clock() - started, 3)
            error.message = f"{error.message} (seen after {waited_s:g} s of wait_timeout {waiter.timeout_s:g} s)"
            error.facts["waited_seconds"] = waited_s
            error.facts["last_view"] = {**report(seen[-1]), "waited_seconds": waited_s} if seen else None
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
