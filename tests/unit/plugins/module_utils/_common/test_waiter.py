# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_common.waiter: a predicate polled with a deadline, on a fake clock (no test sleeps)."""

from __future__ import annotations

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError, KmipOpsError
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.waiter import Waiter, WaitTimeoutError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def waiter(timeout: float, sleep: float, clock: FakeClock) -> Waiter:
    return Waiter(timeout, sleep, clock=clock, sleeper=clock.sleep)


def test_a_condition_true_at_once_is_not_slept_on() -> None:
    clock = FakeClock()
    waited = waiter(10, 1, clock).until(lambda: 5, lambda v: v == 5, str, "five")
    assert (waited.value, waited.waited_s, waited.polls) == (5, 0.0, 1)
    assert clock.sleeps == []


def test_polls_until_the_predicate_holds_and_returns_that_observation() -> None:
    clock = FakeClock()
    values = iter(range(100))
    waited = waiter(60, 2, clock).until(lambda: next(values), lambda v: v >= 3, str, "three")
    assert waited.value == 3 and waited.polls == 4
    assert clock.sleeps == [2, 2, 2] and waited.waited_s == 6


def test_timeout_is_typed_and_carries_the_last_observation() -> None:
    clock = FakeClock()
    values = iter(range(100))
    with pytest.raises(WaitTimeoutError) as raised:
        waiter(5, 2, clock).until(lambda: next(values), lambda v: False, lambda v: f"value {v}", "never")
    error = raised.value
    assert isinstance(error, KmipOpsError) and error.kind == "timeout"
    # polls at 0, 2, 4 and at the deadline (5): the last sleep is cut to the time left
    assert clock.sleeps == [2, 2, 1] and error.polls == 4 and error.last == 3
    assert error.waited_s == 5 and error.timeout_s == 5
    assert "never" in str(error) and "value 3" in str(error) and "4 poll(s)" in str(error)
    assert error.details() == {"waited_seconds": 5, "last_observed": "value 3"}
    error.extra["last_view"] = {"primary": None}
    assert error.details()["last_view"] == {"primary": None}


def test_a_slow_poll_past_the_deadline_ends_the_wait_without_sleeping() -> None:
    clock = FakeClock()

    def observe() -> int:
        clock.now += 30  # e.g. an unreachable member eating its whole connect timeout
        return 0

    with pytest.raises(WaitTimeoutError) as raised:
        waiter(10, 1, clock).until(observe, lambda v: False, str, "x")
    assert clock.sleeps == [] and raised.value.polls == 1


def test_an_exception_of_the_observation_ends_the_wait() -> None:
    clock = FakeClock()

    def observe() -> int:
        raise KmipOpsError("wrong credentials")

    with pytest.raises(KmipOpsError, match="wrong credentials"):
        waiter(10, 1, clock).until(observe, lambda v: False, str, "x")


@pytest.mark.parametrize(
    ("timeout", "sleep", "option"), [(0, 1, "wait_timeout"), (-1, 1, "wait_timeout"), (5, 0, "wait_sleep")]
)
def test_bad_timeout_or_sleep_is_an_invalid_option(timeout: float, sleep: float, option: str) -> None:
    with pytest.raises(InvalidOptionError) as raised:
        Waiter(timeout, sleep)
    assert raised.value.option == option


def test_from_params_reads_the_wait_options() -> None:
    built = Waiter.from_params({"wait_timeout": 30, "wait_sleep": 0.5})
    assert (built.timeout_s, built.sleep_s) == (30.0, 0.5)


class Gone(KmipOpsError):
    kind = "gone"


def test_a_hopeless_observation_ends_the_wait_at_once_with_its_error() -> None:
    """The process awaited has exited: the wait ends at that poll, not at the deadline."""
    clock = FakeClock()
    values = iter(range(100))
    with pytest.raises(Gone) as raised:
        waiter(600, 1, clock).until(
            lambda: next(values),
            lambda v: False,
            str,
            "never",
            hopeless=lambda v: Gone(f"gone at {v}") if v >= 2 else None,
        )
    assert str(raised.value) == "gone at 2" and clock.sleeps == [1, 1] and clock.now == 1002


def test_hopeless_is_asked_before_satisfied() -> None:
    """A stale 'caught up' does not win over a process seen gone in the same poll."""
    clock = FakeClock()
    with pytest.raises(Gone):
        waiter(10, 1, clock).until(lambda: 1, lambda v: True, str, "one", hopeless=lambda v: Gone("gone"))


def test_a_hopeful_observation_keeps_waiting() -> None:
    clock = FakeClock()
    values = iter(range(100))
    waited = waiter(60, 1, clock).until(lambda: next(values), lambda v: v == 3, str, "three", hopeless=lambda v: None)
    assert waited.value == 3 and waited.polls == 4
