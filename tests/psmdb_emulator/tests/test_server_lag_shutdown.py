"""Issue 10 points 1 and 2 on a 3-member set (127.0.40.41-43) run through bin/mongod (the core holds the
dbPath lock and turns SIGTERM into mongod's shutdown): lag is real, and shutdown is mongod 5.0+'s.

Members write a periodic no-op every second (--setParameter periodicNoopIntervalSecs=1). Member 0 (the
first primary) quiesces for 5 s at shutdown, the others for 1 s, so that the suite stays fast; the 15 s
default is checked on the standalone suite. The scenarios run in file order against one set.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from psmdb_emulator.server.peer import PeerError
from psmdb_emulator.server.testing import (
    EmulatorProcess,
    RawClient,
    initiate_and_step_up,
    member_states,
    terminate_all,
    wait_for,
)

HOSTS = ("127.0.40.41", "127.0.40.42", "127.0.40.43")
PORT = 27017
SET_NAME = "rslag"
SETTINGS = {"heartbeatIntervalMillis": 1000, "electionTimeoutMillis": 10000}
QUIESCE_MS = (5000, 1000, 1000)
DOWN_SECONDS = 30.0
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[EmulatorProcess]]:
    base: Path = tmp_path_factory.mktemp("lagshutdown")
    processes = []
    for index, host in enumerate(HOSTS):
        workdir = base / f"member{index}"
        workdir.mkdir()
        args = [
            "--replSet", SET_NAME,
            "--setParameter", "periodicNoopIntervalSecs=1",
            "--setParameter", f"shutdownTimeoutMillisForSignaledShutdown={QUIESCE_MS[index]}",
        ]  # fmt: skip
        processes.append(EmulatorProcess(workdir, host, PORT, args, use_launcher=True))
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_listening()
        initiate_and_step_up(processes, SET_NAME, **SETTINGS)
        yield processes
    finally:
        for process in processes:  # no need for member 0's 5 s quiesce at teardown
            if process.alive():
                with contextlib.suppress(PeerError):
                    RawClient(process.address, timeout=5).run(
                        "admin", {"setParameter": 1, "shutdownTimeoutMillisForSignaledShutdown": 200}
                    )
        terminate_all(processes)


def primary_of(members: list[EmulatorProcess]) -> EmulatorProcess:
    def found() -> EmulatorProcess | None:
        for member in members:
            if not member.alive():
                continue
            try:
                if RawClient(member.address, timeout=5).run("admin", {"hello": 1}).get("isWritablePrimary"):
                    return member
            except Exception:
                continue
        return None

    return wait_for(found, TIMEOUT, "a primary", interval=0.05)


def status_of(member: EmulatorProcess) -> dict[str, Any]:
    return RawClient(member.address, timeout=10).run("admin", {"replSetGetStatus": 1})


def by_name(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in status["members"]}


def wait_healthy(members: list[EmulatorProcess]) -> EmulatorProcess:
    primary = primary_of(members)

    def healthy() -> bool:
        states = list(member_states(primary).values())
        return states.count("PRIMARY") == 1 and states.count("SECONDARY") == len(members) - 1

    wait_for(healthy, TIMEOUT, "one PRIMARY and SECONDARY members", interval=0.2)
    return primary


def restart(member: EmulatorProcess) -> None:
    member.start()
    member.wait_listening()


def test_i10_1_periodic_noops_move_an_idle_set(members: list[EmulatorProcess]) -> None:
    primary = wait_healthy(members)
    first = status_of(primary)["optimes"]["appliedOpTime"]
    wait_for(
        lambda: status_of(primary)["optimes"]["appliedOpTime"]["ts"].time >= first["ts"].time + 3,
        30,
        "the idle primary's optime to advance by periodic no-ops",
    )
    with MongoClient(primary.address, directConnection=True) as client:
        noops = list(client.local["oplog.rs"].find({"op": "n", "o.msg": "periodic noop"}))
        parameters = client.admin.command({"getParameter": 1, "periodicNoopIntervalSecs": 1, "writePeriodicNoops": 1})
    assert len(noops) >= 3
    assert parameters["periodicNoopIntervalSecs"] == 1 and parameters["writePeriodicNoops"] is True

    # Members show the wall time of their last oplog entry, never the heartbeat time, never ahead of the primary.
    secondary = next(m for m in members if m is not primary)
    wait_for(
        lambda: by_name(status_of(primary))[secondary.address]["optime"]["ts"].time >= first["ts"].time + 3,
        30,
        "the secondary to replicate the no-ops",
    )
    status = status_of(primary)
    seen = by_name(status)[secondary.address]
    with MongoClient(secondary.address, directConnection=True, tz_aware=True) as client:
        entry = client.local["oplog.rs"].find_one({"ts": seen["optime"]["ts"]})
    assert entry is not None and entry["wall"] == seen["lastAppliedWallTime"]
    assert seen["lastAppliedWallTime"] <= status["optimes"]["lastAppliedWallTime"]
    assert seen["optimeDate"] <= by_name(status)[primary.address]["optimeDate"]
    assert seen["lastHeartbeat"] != seen["lastAppliedWallTime"]

    # writePeriodicNoops can be switched off at runtime: an idle set then stands still.
    admin = RawClient(primary.address)
    assert admin.run("admin", {"setParameter": 1, "writePeriodicNoops": False})["ok"] == 1.0
    try:
        before = status_of(primary)["optimes"]["appliedOpTime"]
        time.sleep(3)
        assert status_of(primary)["optimes"]["appliedOpTime"] == before
    finally:
        admin.run("admin", {"setParameter": 1, "writePeriodicNoops": True})
    refused = admin.run("admin", {"setParameter": 1, "periodicNoopIntervalSecs": 5})
    assert refused["codeName"] == "InvalidOptions"  # startup-only parameter


def test_i10_2_sigterm_primary_hands_off_then_quiesces(members: list[EmulatorProcess]) -> None:
    old = wait_healthy(members)
    others = [m for m in members if m is not old]
    quiesce_ms = QUIESCE_MS[members.index(old)]
    assert old.db_path_locked()

    signalled = time.monotonic()
    old.process.send_signal(15)  # type: ignore[union-attr]
    new = primary_of(others)
    elected_after = time.monotonic() - signalled
    assert elected_after <= 2.0, f"new primary after {elected_after:.2f} s"

    # Quiesce: still alive, dbPath still locked, hello refused (also on a new connection), other commands run.
    def quiescing() -> dict[str, Any] | None:
        reply = RawClient(old.address, timeout=5).run("admin", {"hello": 1})
        return reply if reply.get("code") == 91 else None

    refused = wait_for(quiescing, 10, "hello to answer ShutdownInProgress", interval=0.05)
    assert refused["codeName"] == "ShutdownInProgress"
    assert refused["errmsg"] == "The server is in quiesce mode and will shut down"
    assert 0 < refused["remainingQuiesceTimeMillis"] <= quiesce_ms
    assert "topologyVersion" in refused
    assert old.alive() and old.db_path_locked()
    assert RawClient(old.address, timeout=5).run("admin", {"ping": 1})["ok"] == 1.0
    current = RawClient(old.address, timeout=5).run("admin", {"replSetGetStatus": 1})
    assert current["myState"] == 2  # stepped down, not primary while quiescing
    awaited = RawClient(old.address, timeout=30).run(
        "admin", {"hello": 1, "topologyVersion": refused["topologyVersion"], "maxAwaitTimeMS": 20000}
    )
    assert awaited["code"] == 91  # awaitable hello too

    assert old.wait_exit(timeout=60) == 0
    took = time.monotonic() - signalled
    assert took >= quiesce_ms / 1000 - 1.5, f"exited {took:.1f} s after SIGTERM"
    assert not old.db_path_locked()
    log = old.log_text()
    for log_id in ('"id":4784900', '"id":4695102', '"id":4695103'):
        assert log_id in log
    assert new is not old

    restart(old)
    wait_healthy(members)


def test_i10_1_restarted_secondary_shows_lag_until_caught_up(members: list[EmulatorProcess]) -> None:
    primary = wait_healthy(members)
    stopped = next(m for m in members if m is not primary)
    assert stopped.terminate(timeout=60) == 0
    down_since = time.monotonic()

    # The set keeps taking majority writes with one member down, and its optimes keep moving.
    with MongoClient(primary.address, directConnection=True, w="majority", wtimeoutMS=30000) as client:
        client.app.lag.insert_one({"while": "down"})
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_since)))

    # Watch the primary's view continuously (one connection, no pause): the restarted member may catch up
    # within a fraction of a second of reporting its stale position, as a real member does on an idle set.
    observed: list[tuple[str, float, datetime.datetime, datetime.datetime]] = []
    watching = threading.Event()
    watcher_client = RawClient(primary.address, timeout=10)

    def watch() -> None:
        while not watching.wait(0.02):
            status = watcher_client.run("admin", {"replSetGetStatus": 1})
            member = by_name(status)[stopped.address]
            if member["health"] != 1.0 or member["optime"]["ts"].time == 0:
                continue
            mine = by_name(status)[primary.address]
            lag = (mine["optimeDate"] - member["optimeDate"]).total_seconds()
            observed.append(
                (member["stateStr"], lag, member["lastAppliedWallTime"], status["optimes"]["lastAppliedWallTime"])
            )

    watcher = threading.Thread(target=watch, name="status-watcher")
    watcher.start()
    try:
        restart(stopped)
        wait_for(
            lambda: any(state == "SECONDARY" and lag <= 3 for state, lag, _, _ in observed[-5:]),
            TIMEOUT,
            "the restarted member to catch up",
            interval=0.05,
        )
    finally:
        watching.set()
        watcher.join(timeout=30)
        watcher_client.close()
    assert max(lag for _, lag, _, _ in observed) >= 20, observed[:5]
    assert all(lag >= 0 and wall <= primary_wall for _, lag, wall, primary_wall in observed)
    # A restarted member with data: STARTUP -> STARTUP2 -> RECOVERING -> SECONDARY.
    transitions = [
        (line.split('"oldState":"')[1].split('"')[0], line.split('"newState":"')[1].split('"')[0])
        for line in stopped.log_text().splitlines()[-400:]
        if '"id":21358' in line
    ]
    assert transitions[-3:] == [("STARTUP", "STARTUP2"), ("STARTUP2", "RECOVERING"), ("RECOVERING", "SECONDARY")]


def test_i10_2_shutdown_command_quiesces_a_secondary_for_timeout_secs(members: list[EmulatorProcess]) -> None:
    primary = wait_healthy(members)
    secondary = next(m for m in members if m is not primary)
    hello = RawClient(secondary.address).run("admin", {"hello": 1})
    pending: dict[str, Any] = {}

    def await_hello() -> None:
        pending["reply"] = RawClient(secondary.address, timeout=60).run(
            "admin", {"hello": 1, "topologyVersion": hello["topologyVersion"], "maxAwaitTimeMS": 30000}
        )
        pending["at"] = time.monotonic()

    waiter = threading.Thread(target=await_hello)
    waiter.start()
    time.sleep(0.5)
    asked = time.monotonic()
    with pytest.raises(PeerError):  # mongod closes the connection without a reply
        RawClient(secondary.address, timeout=60).run("admin", {"shutdown": 1, "timeoutSecs": 3})
    waiter.join(timeout=60)
    assert pending["reply"]["code"] == 91  # the waiting awaitable hello was answered with ShutdownInProgress
    assert pending["at"] - asked < 2.5
    assert secondary.wait_exit(timeout=60) == 0
    assert time.monotonic() - asked >= 2.0  # timeoutSecs, not shutdownTimeoutMillisForSignaledShutdown (1 s)
    assert '"id":4695400' in secondary.log_text()  # Terminating via shutdown command
    restart(secondary)
    wait_healthy(members)


def test_i10_2_shutdown_command_fails_on_a_primary_without_electable_secondary(
    members: list[EmulatorProcess],
) -> None:
    primary = wait_healthy(members)
    admin = RawClient(primary.address)
    config = admin.run("admin", {"replSetGetConfig": 1})["config"]
    for member in config["members"]:
        member["priority"] = 1.0 if member["host"] == primary.address else 0.0
    config["version"] += 1
    assert admin.run("admin", {"replSetReconfig": config})["ok"] == 1.0
    started = time.monotonic()
    reply = admin.run("admin", {"shutdown": 1, "timeoutSecs": 2})
    assert reply["codeName"] == "ExceededTimeLimit", reply  # not forced: nothing shuts down
    assert time.monotonic() - started >= 1.5
    assert primary.alive()
    assert admin.run("admin", {"hello": 1})["isWritablePrimary"] is True
    # force: the failed step-down is ignored and the primary (not SECONDARY, so no quiesce) exits at once
    with pytest.raises(PeerError):
        RawClient(primary.address, timeout=60).run("admin", {"shutdown": 1, "timeoutSecs": 1, "force": True})
    assert primary.wait_exit(timeout=60) == 0
    assert '"id":4719000' in primary.log_text()  # Error stepping down during force shutdown
    assert '"id":4695102' not in primary.log_text().split('"id":4719000')[-1]  # no quiesce
