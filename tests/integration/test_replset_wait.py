# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_replset_info and mongod_member_stepdown against a 3-member emulated replica set.

The members bind ``<net>.70``-``<net>.72`` (conftest.py) and run until the end of the module;
each test says the state it needs and waits for it with a deadline. The point of these tests is
WHOSE view ends a wait: when ``member_caught_up`` returns, the PRIMARY (asked independently,
right after) already sees the restarted member SECONDARY and healthy.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from kmiplab.playbook import PlaybookResult

EMULATOR = Path(__file__).resolve().parents[1] / "psmdb_emulator"
if str(EMULATOR) not in sys.path:
    sys.path.insert(0, str(EMULATOR))  # its package, not the tests/psmdb_emulator directory

from psmdb_emulator.server.testing import (  # noqa: E402
    QUICK_SHUTDOWN,
    EmulatorProcess,
    RawClient,
    initiate_and_step_up,
    terminate_all,
    wait_for,
)

OCTETS = (70, 71, 72)
PORT = 27017
SET_NAME = "rswait"
# fast heartbeats so that the test does not wait for nothing; elections as the emulator's own tests
SETTINGS = {"heartbeatIntervalMillis": 500, "electionTimeoutMillis": 5000}
DEADLINE = 180.0  # a loaded 2-core machine: generous, always polled


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory, kmiplab_net: str) -> Iterator[list[EmulatorProcess]]:
    base: Path = tmp_path_factory.mktemp("replset-wait")
    processes = []
    for octet in OCTETS:
        workdir = base / f"member{octet}"
        workdir.mkdir()
        host = f"{kmiplab_net}.{octet}"
        processes.append(EmulatorProcess(workdir, host, PORT, ["--replSet", SET_NAME, *QUICK_SHUTDOWN]))
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_listening()
        initiate_and_step_up(processes, SET_NAME, timeout=DEADLINE, **SETTINGS)
        yield processes
    finally:
        terminate_all(processes)


def primary_status(members: list[EmulatorProcess]) -> dict[str, Any] | None:
    """replSetGetStatus of whichever member says it is the writable primary (None: no primary)."""
    for member in members:
        if member.process is None or member.process.poll() is not None:
            continue
        try:
            client = RawClient(member.address, timeout=10)
            if client.run("admin", {"hello": 1}).get("isWritablePrimary"):
                return client.run("admin", {"replSetGetStatus": 1})
        except Exception:
            continue
    return None


def primary_of(members: list[EmulatorProcess]) -> EmulatorProcess:
    def found() -> EmulatorProcess | None:
        status = primary_status(members)
        if status is None:
            return None
        name = next(m["name"] for m in status["members"] if m.get("self"))
        return next(p for p in members if p.address == name)

    return wait_for(found, DEADLINE, "a primary", interval=0.25)


def all_healthy(members: list[EmulatorProcess]) -> None:
    def healthy() -> bool:
        status = primary_status(members)
        return status is not None and all(
            m["health"] == 1 and m["stateStr"] in ("PRIMARY", "SECONDARY") for m in status["members"]
        )

    wait_for(healthy, DEADLINE, "every member healthy in the primary's view", interval=0.25)


def a_secondary(members: list[EmulatorProcess]) -> EmulatorProcess:
    primary = primary_of(members)
    return next(m for m in members if m is not primary)


def connection(member: EmulatorProcess) -> dict[str, Any]:
    return {"login_host": member.host, "login_port": member.port, "timeout_ms": 2000}


@pytest.fixture
def module(run_playbook: Callable[..., PlaybookResult]) -> Callable[..., tuple[dict[str, Any], PlaybookResult]]:
    def run(name: str, args: dict[str, Any], check: bool = False) -> tuple[dict[str, Any], PlaybookResult]:
        text = (
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            f"    - name: module\n      kmipops.psmdb.{name}: {json.dumps(args)}\n"
            "      ignore_errors: true\n"
        )
        result = run_playbook(text, check=check, timeout=900)
        task = result.task("module")
        return {**task.result, "failed": task.failed}, result

    return run


def test_info_reads_the_primary_view_from_a_secondary(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    primary = primary_of(members)
    secondary = a_secondary(members)
    result, _ = module("mongod_replset_info", connection(secondary))
    assert not result["failed"], result.get("msg")
    assert result["set_name"] == SET_NAME
    assert result["primary"] == primary.address
    assert result["self"] == secondary.address
    assert result["healthy"] is True
    assert result["majority_survives_one_down"] is True
    assert result["condition_met"] is True
    assert result["waited_seconds"] == 0
    assert isinstance(result["term"], int) and result["term"] >= 1
    assert result["oplog_window_seconds"] is not None and result["oplog_window_seconds"] >= 0
    # a young oplog (at least 990 MB, as mongod sizes it): far from full, so its capacity is longer than its age
    assert 0 < result["oplog_fill_ratio"] < 0.01
    assert result["oplog_capacity_window_seconds"] >= result["oplog_window_seconds"]
    by_name = {m["name"]: m for m in result["members"]}
    assert set(by_name) == {m.address for m in members}
    assert by_name[secondary.address]["is_self"] is True
    assert [m["name"] for m in result["members"] if m["is_self"]] == [secondary.address]
    assert by_name[primary.address]["state_str"] == "PRIMARY"
    assert by_name[primary.address]["lag_seconds"] == 0
    for entry in by_name.values():
        assert entry["health"] is True
        assert entry["votes"] == 1 and entry["priority"] == 1 and entry["hidden"] is False
        assert entry["arbiter_only"] is False
        assert entry["lag_seconds"] is not None and entry["lag_seconds"] >= 0


def test_member_caught_up_ends_when_the_primary_sees_the_member(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    primary = primary_of(members)
    secondary = a_secondary(members)
    others = [m.address for m in members if m is not secondary]
    secondary.terminate()
    # writes while it is down, so that it has something to catch up on
    with MongoClient(primary.address, directConnection=True, serverSelectionTimeoutMS=20000) as client:
        client.test.wait.insert_many([{"n": n} for n in range(50)])
    restarted = threading.Timer(3.0, secondary.start)
    restarted.start()
    try:
        started = time.monotonic()
        result, _ = module(
            "mongod_replset_info",
            {
                **connection(secondary),
                "seeds": others,
                "member": secondary.address,
                "wait_for": "member_caught_up",
                "max_lag_seconds": 2,
                "wait_sleep": 0.2,
                "wait_timeout": int(DEADLINE),
            },
        )
        # asked independently, right after the module returned: the PRIMARY sees it back
        status = primary_status(members)
    finally:
        restarted.join()
    assert not result["failed"], result.get("msg")
    assert status is not None
    seen = next(m for m in status["members"] if m["name"] == secondary.address)
    assert seen["health"] == 1 and seen["stateStr"] == "SECONDARY", seen
    assert result["waited_seconds"] > 0
    assert result["waited_seconds"] <= time.monotonic() - started
    entry = next(m for m in result["members"] if m["name"] == secondary.address)
    assert entry["state_str"] == "SECONDARY" and entry["health"] is True
    assert entry["lag_seconds"] is not None and entry["lag_seconds"] <= 2
    # "self" is the login member once it has answered, else the first seed that answered: polls
    # start with the member that answered last, so whether the restarted member was asked again
    # before the primary saw it caught up depends on timing (on a quiet machine it is not)
    assert result["self"] in {secondary.address, *others}
    assert [m["name"] for m in result["members"] if m["is_self"]] == [result["self"]]


def test_member_caught_up_times_out_with_the_last_view(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    secondary = a_secondary(members)
    others = [m.address for m in members if m is not secondary]
    secondary.terminate()
    try:
        started = time.monotonic()
        result, _ = module(
            "mongod_replset_info",
            {
                **connection(secondary),
                "seeds": others,
                "member": secondary.address,
                "wait_for": "member_caught_up",
                "wait_sleep": 0.5,
                "wait_timeout": 3,
            },
        )
        elapsed = time.monotonic() - started
    finally:
        secondary.start()
        secondary.wait_listening()
    assert result["failed"], result
    assert result["error_kind"] == "timeout"
    assert "timed out" in result["msg"] and secondary.address in result["msg"]
    last = result["last_view"]
    assert last["set_name"] == SET_NAME and last["primary"] in others
    entry = next(m for m in last["members"] if m["name"] == secondary.address)
    assert entry["health"] is False and entry["lag_seconds"] is None
    assert last["healthy"] is False
    assert last["self"] in others  # the stopped member never answered
    assert result["waited_seconds"] >= 3
    assert elapsed < 120  # it gave up at the deadline, not at a retry count


def test_unknown_member_fails_at_once(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    result, _ = module(
        "mongod_replset_info",
        {**connection(members[0]), "member": "nowhere.test:27017", "wait_for": "member_caught_up"},
    )
    assert result["failed"], result
    assert result["error_kind"] == "invalid_option" and result["option"] == "member"


def test_nothing_reachable_without_wait_fails_unreachable(module, kmiplab_net: str) -> None:
    result, _ = module(
        "mongod_replset_info", {"login_host": f"{kmiplab_net}.79", "login_port": PORT, "timeout_ms": 500}
    )
    assert result["failed"], result
    assert result["error_kind"] == "unreachable"


def test_stepdown_check_mode_neither_steps_down_nor_waits(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    primary = primary_of(members)
    result, _ = module("mongod_member_stepdown", {**connection(primary), "step_down_secs": 30}, check=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True and result["was_primary"] is True
    assert result["new_primary"] is None and result["waited_seconds"] == 0
    assert primary_of(members) is primary


def test_stepdown_waits_for_a_new_primary(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    old = primary_of(members)
    result, _ = module(
        "mongod_member_stepdown",
        {
            **connection(old),
            "step_down_secs": 30,
            "secondary_catch_up_period_secs": 10,
            "wait_sleep": 0.2,
            "wait_timeout": int(DEADLINE),
        },
    )
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True and result["was_primary"] is True
    assert result["new_primary"] in {m.address for m in members} - {old.address}
    # the new primary says so itself, right after the module returned
    new = next(m for m in members if m.address == result["new_primary"])
    assert RawClient(new.address, timeout=10).run("admin", {"hello": 1})["isWritablePrimary"] is True


def test_stepdown_of_a_secondary_changes_nothing(members: list[EmulatorProcess], module) -> None:
    all_healthy(members)
    secondary = a_secondary(members)
    result, _ = module("mongod_member_stepdown", connection(secondary))
    assert not result["failed"], result.get("msg")
    assert result["changed"] is False and result["was_primary"] is False and result["new_primary"] is None
