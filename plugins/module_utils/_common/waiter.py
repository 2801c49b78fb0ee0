# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Waiting in one place: observe, test a predicate, sleep, until a deadline.

Every module that waits for something (a replica set member caught up, a new primary, a
process gone) polls through ``Waiter.until`` instead of writing its own loop with a fixed
sleep. The clock and the sleep are injected, so tests run a whole wait without sleeping.
Options ``wait_timeout`` and ``wait_sleep`` (doc fragment ``kmipops.psmdb.wait``) are
``WAIT_ARGSPEC`` here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipOpsError,
)

T = TypeVar("T")

#: the options of the modules that wait (doc fragment kmipops.psmdb.wait)
WAIT_ARGSPEC: dict[str, dict[str, Any]] = {
    "wait_timeout": {"type": "int", "default": 600},
    "wait_sleep": {"type": "float", "default": 1.0},
}


class WaitTimeoutError(KmipOpsError):
    """The condition did not hold before the deadline; carries what was seen last."""

    kind = "timeout"

    def __init__(self, what: str, timeout_s: float, waited_s: float, polls: int, last_description: str, last: Any):
        self.what = what
        self.timeout_s = timeout_s
        self.waited_s = waited_s
        self.polls = polls
        self.last_description = last_description
        #: the last observed value (for example a replica set view), for the caller to return
        self.last = last
        #: secret-free facts the caller adds to the failure (e.g. ``last_view``)
        self.extra: dict[str, Any] = {}
        super().__init__(
            f"timed out after {waited_s:.1f}s (wait_timeout {timeout_s:g}s, {polls} poll(s)) waiting for {what}; "
            f"last seen: {last_description}"
        )

    def details(self) -> dict[str, Any]:
        return {"waited_seconds": round(self.waited_s, 3), "last_observed": self.last_description, **self.extra}


@dataclass
class Waited(Generic[T]):
    """The observation that satisfied the predicate, and how long it took."""

    value: T
    waited_s: float
    polls: int


class Waiter:
    """Poll ``observe`` every ``sleep_s`` until ``satisfied`` holds or ``timeout_s`` has passed.

    The first poll is immediate; the last one happens at the deadline (a sleep never runs past
    it), so a condition that becomes true just before the deadline is still seen.
    """

    def __init__(
        self,
        timeout_s: float,
        sleep_s: float,
        clock: Callable[[], float] | None = None,
        sleeper: Callable[[float], None] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise InvalidOptionError("wait_timeout", f"must be greater than 0, got {timeout_s:g}")
        if sleep_s <= 0:
            raise InvalidOptionError("wait_sleep", f"must be greater than 0, got {sleep_s:g}")
        self.timeout_s = float(timeout_s)
        self.sleep_s = float(sleep_s)
        # looked up now, not at import: tests replace this module's ``time``
        self.clock = clock or time.monotonic
        self.sleeper = sleeper or time.sleep

    @classmethod
    def from_params(cls, params: dict[str, Any], **kwargs: Any) -> Waiter:
        """A waiter for options ``wait_timeout`` and ``wait_sleep``."""
        return cls(params["wait_timeout"], params["wait_sleep"], **kwargs)

    def until(
        self,
        observe: Callable[[], T],
        satisfied: Callable[[T], bool],
        describe: Callable[[T], str],
        what: str,
        hopeless: Callable[[T], BaseException | None] | None = None,
    ) -> Waited[T]:
        """The first observation that ``satisfied`` accepts; ``WaitTimeoutError`` at the deadline.

        ``observe`` returns a value for every poll (a failure that is a normal state while
        waiting, such as an unreachable member, is part of that value); an exception it raises
        ends the wait. ``describe`` says in a few words what a value shows, for the timeout error.
        ``hopeless`` is asked first on every poll: the error it returns (waiting longer cannot
        help, e.g. the awaited process has exited) is raised at once instead of waiting out the
        deadline.
        """
        started = self.clock()
        deadline = started + self.timeout_s
        polls = 0
        while True:
            value = observe()
            polls += 1
            now = self.clock()
            error = hopeless(value) if hopeless is not None else None
            if error is not None:
                raise error
            if satisfied(value):
                return Waited(value, now - started, polls)
            remaining = deadline - now
            if remaining <= 0:
                raise WaitTimeoutError(what, self.timeout_s, now - started, polls, describe(value), value)
            self.sleeper(min(self.sleep_s, remaining))
