"""A 3-member emulated replica set on 127.0.40.1-3: initiate, elections, majority writes, stepdown, failover.

The scenarios run in file order against one set (starting processes is the slow part); each test states the
state it needs and waits for it with a deadline.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson.binary import Binary, UuidRepresentation
from bson.int64 import Int64
from pymongo import MongoClient
from pymongo.errors import (
    AutoReconnect,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
)
from pymongo.write_concern import WriteConcern

from psmdb_emulator.server.testing import (
    QUICK_SHUTDOWN,
    EmulatorProcess,
    RawClient,
    replica_set_config,
    terminate_all,
    wait_for,
)

HOSTS = ("127.0.40.1", "127.0.40.2", "127.0.40.3")
PORT = 27017
SET_NAME = "rs0"
# Short, but tolerant of a busy shared machine; set through the replica set config like on a real mongod.
SETTINGS = {"heartbeatIntervalMillis": 1000, "electionTimeoutMillis": 10000}
FAILOVER_TIMEOUT = 180.0  # generous: on a loaded 2-core machine one election can take 15 s


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[EmulatorProcess]]:
    base: Path = tmp_path_factory.mktemp("replset")
    processes = []
    for index, host in enumerate(HOSTS):
        workdir = base / f"member{index}"
        workdir.mkdir()
        processes.append(EmulatorProcess(workdir, host, PORT, ["--replSet", SET_NAME, *QUICK_SHUTDOWN]))
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_listening()
        yield processes
    finally:
        terminate_all(processes)


def direct(member: EmulatorProcess, **kwargs: Any) -> MongoClient[dict[str, Any]]:
    return MongoClient(member.address, directConnection=True, serverSelectionTimeoutMS=20000, **kwargs)


def set_client(**kwargs: Any) -> MongoClient[dict[str, Any]]:
    seeds = ",".join(f"{host}:{PORT}" for host in HOSTS)
    return MongoClient(f"mongodb://{seeds}/?replicaSet={SET_NAME}", serverSelectionTimeoutMS=60000, **kwargs)


def current_primary(members: list[EmulatorProcess]) -> EmulatorProcess | None:
    for member in members:
        if member.process is None or member.process.poll() is not None:
            continue
        try:
            if RawClient(member.address, timeout=10).run("admin", {"hello": 1}).get("isWritablePrimary"):
                return member
        except Exception:
            continue
    return None


def wait_primary(members: list[EmulatorProcess], other_than: EmulatorProcess | None = None) -> EmulatorProcess:
    def found() -> EmulatorProcess | None:
        primary = current_primary(members)
        return primary if primary is not None and primary is not other_than else None

    return wait_for(found, FAILOVER_TIMEOUT, "a primary", interval=0.25)


def wait_all_healthy(member: EmulatorProcess, expected: int = 3) -> dict[str, Any]:
    def healthy() -> dict[str, Any] | None:
        status = RawClient(member.address).run("admin", {"replSetGetStatus": 1})
        states = [m["stateStr"] for m in status.get("members", [])]
        ok = states.count("PRIMARY") == 1 and states.count("SECONDARY") == expected - 1
        return status if ok else None

    return wait_for(healthy, FAILOVER_TIMEOUT, "one PRIMARY and healthy SECONDARY members", interval=0.25)


def write_until_acknowledged(write: Callable[[], object], timeout: float = FAILOVER_TIMEOUT) -> None:
    """Retries an idempotent write across elections: on a loaded machine a primary may lose its majority
    (heartbeats too slow) and step down, as mongod would; only an acknowledged write counts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            write()
            return
        except (AutoReconnect, NotPrimaryError, WriteConcernError, ServerSelectionTimeoutError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def session_insert(doc_id: int, txn_number: int, lsid: dict[str, Any]) -> dict[str, Any]:
    return {
        "insert": "retry",
        "documents": [{"_id": doc_id}],
        "lsid": lsid,
        "txnNumber": Int64(txn_number),
        "writeConcern": {"w": "majority", "wtimeout": 30000},
    }


LSID = {"id": Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD)}


def test_initiate_elects_one_primary_with_mongod_status_shape(members: list[EmulatorProcess]) -> None:
    reply = RawClient(members[0].address).run(
        "admin", {"replSetInitiate": replica_set_config(SET_NAME, members, **SETTINGS)}
    )
    assert reply["ok"] == 1.0, reply
    primary = wait_primary(members)
    status = wait_all_healthy(primary)

    assert status["set"] == SET_NAME
    assert status["myState"] == 1
    assert status["term"] >= 1
    assert status["heartbeatIntervalMillis"] == 1000
    assert {"lastCommittedOpTime", "appliedOpTime", "durableOpTime"} <= set(status["optimes"])
    by_name = {m["name"]: m for m in status["members"]}
    assert set(by_name) == {f"{host}:{PORT}" for host in HOSTS}
    me = by_name[primary.address]
    assert me["self"] is True and me["stateStr"] == "PRIMARY" and "electionDate" in me
    for name, member in by_name.items():
        assert set(member["optime"]) == {"ts", "t"}
        assert member["health"] == 1.0
        if name != primary.address:
            assert "self" not in member
            assert member["stateStr"] == "SECONDARY"
            assert {"lastHeartbeat", "lastHeartbeatRecv", "pingMs", "syncSourceHost"} <= set(member)

    # A secondary learns who the primary is from heartbeats.
    hello = wait_for(
        lambda: (reply := RawClient(members[1].address).run("admin", {"hello": 1})).get("primary") and reply,
        30,
        "member 1 to know the primary",
    )
    assert hello["setName"] == SET_NAME
    assert sorted(hello["hosts"]) == sorted(f"{h}:{PORT}" for h in HOSTS)
    assert hello["primary"] == primary.address
    assert hello["me"] == members[1].address
    assert hello["maxWireVersion"] == 21


def test_second_initiate_is_refused(members: list[EmulatorProcess]) -> None:
    reply = RawClient(members[1].address).run(
        "admin", {"replSetInitiate": replica_set_config(SET_NAME, members, **SETTINGS)}
    )
    assert reply["ok"] == 0.0
    assert reply["codeName"] == "AlreadyInitialized"


def test_majority_writes_reach_every_member(members: list[EmulatorProcess]) -> None:
    with set_client() as client:
        collection = client.app.get_collection("items", write_concern=WriteConcern(w="majority", wtimeout=30000))
        for index in range(20):
            document = {"_id": index, "value": index * 2}
            write_until_acknowledged(lambda d=document: collection.replace_one({"_id": d["_id"]}, d, upsert=True))
        write_until_acknowledged(lambda: collection.update_one({"_id": 3}, {"$set": {"value": "changed"}}))
        write_until_acknowledged(lambda: collection.delete_one({"_id": 4}))

    def replicated_everywhere() -> bool:
        for member in members:
            with direct(member) as client:
                docs = {d["_id"]: d["value"] for d in client.app.items.find()}
                if len(docs) != 19 or docs.get(3) != "changed" or 4 in docs:
                    return False
        return True

    wait_for(replicated_everywhere, 60, "the writes on every member")


def test_secondary_refuses_primary_only_reads_and_writes(members: list[EmulatorProcess]) -> None:
    primary = wait_primary(members)
    secondary = next(m for m in members if m is not primary)
    client = RawClient(secondary.address)
    read = client.run("app", {"find": "items"})
    assert read["code"] == 13435  # NotPrimaryNoSecondaryOk
    read_ok = client.run("app", {"find": "items", "$readPreference": {"mode": "secondaryPreferred"}})
    assert read_ok["ok"] == 1.0
    write = client.run("app", {"insert": "items", "documents": [{"_id": "x"}]})
    assert write["codeName"] == "NotWritablePrimary"


def test_retried_write_is_applied_once(members: list[EmulatorProcess]) -> None:
    primary = wait_primary(members)
    client = RawClient(primary.address)
    first = client.run("app", session_insert(1, 1, LSID))
    assert first["ok"] == 1.0 and first["n"] == 1
    retry = client.run("app", session_insert(1, 1, LSID))
    assert retry["ok"] == 1.0 and retry["n"] == 1 and "writeErrors" not in retry  # not a duplicate key
    older = client.run("app", session_insert(1, 0, LSID))
    assert older["codeName"] == "TransactionTooOld"
    with direct(primary) as mongo:
        assert mongo.app.retry.count_documents({}) == 1


def test_step_down_hands_over_to_a_caught_up_secondary(members: list[EmulatorProcess]) -> None:
    old_primary = wait_primary(members)
    wait_all_healthy(old_primary)
    reply = RawClient(old_primary.address).run("admin", {"replSetStepDown": 60, "secondaryCatchUpPeriodSecs": 20})
    assert reply["ok"] == 1.0, reply
    new_primary = wait_primary(members, other_than=old_primary)
    assert new_primary is not old_primary
    # The stepped-down member does not stand again during stepDownSecs.
    assert RawClient(old_primary.address).run("admin", {"hello": 1})["isWritablePrimary"] is False

    # The retryable-write record replicated with the oplog: a retry on the new primary is not applied twice.
    retry = RawClient(new_primary.address).run("app", session_insert(1, 1, LSID))
    assert retry["ok"] == 1.0 and retry["n"] == 1 and "writeErrors" not in retry


def test_step_down_of_a_secondary_is_refused(members: list[EmulatorProcess]) -> None:
    primary = wait_primary(members)
    secondary = next(m for m in members if m is not primary)
    reply = RawClient(secondary.address).run("admin", {"replSetStepDown": 10})
    assert reply["codeName"] == "NotWritablePrimary"


def unfreeze_all(members: list[EmulatorProcess]) -> None:
    """replSetFreeze 0 also ends a step-down period, so every member may stand again."""
    for member in members:
        RawClient(member.address).run("admin", {"replSetFreeze": 0})


def test_i10_9_config_term_and_election_metrics(members: list[EmulatorProcess]) -> None:
    unfreeze_all(members)
    old = wait_primary(members)
    wait_all_healthy(old)
    reply = RawClient(old.address).run("admin", {"replSetStepDown": 10, "secondaryCatchUpPeriodSecs": 5})
    assert reply["ok"] == 1.0, reply
    new = wait_primary(members, other_than=old)

    def config_term_follows() -> dict[str, Any] | None:
        status = RawClient(new.address).run("admin", {"replSetGetStatus": 1})
        config = RawClient(new.address).run("admin", {"replSetGetConfig": 1})["config"]
        terms = {m["configTerm"] for m in status["members"]}
        return status if config["term"] == status["term"] and terms == {status["term"]} else None

    status = wait_for(config_term_follows, 60, "config.term to follow the new term on every member")
    candidate = status["electionCandidateMetrics"]
    assert candidate["lastElectionReason"] == "stepUpRequestSkipDryRun"  # election handoff
    assert candidate["electionTerm"] == status["term"]
    assert candidate["numVotesNeeded"] == 2 and candidate["priorityAtElection"] == 1.0
    for field_name in ("lastElectionDate", "lastCommittedOpTimeAtElection", "lastSeenOpTimeAtElection",
                       "electionTimeoutMillis", "newTermStartDate"):  # fmt: skip
        assert field_name in candidate
    metrics = RawClient(new.address).run("admin", {"serverStatus": 1})["electionMetrics"]
    for counter in ("stepUpCmd", "priorityTakeover", "catchUpTakeover", "electionTimeout", "freezeTimeout"):
        assert set(metrics[counter]) == {"called", "successful"}
    assert metrics["stepUpCmd"]["successful"] >= 1
    assert "numStepDownsCausedByHigherTerm" in metrics and "numCatchUps" in metrics
    old_status = RawClient(old.address).run("admin", {"replSetGetStatus": 1})
    assert "electionCandidateMetrics" not in old_status  # cleared when it stepped down
    assert old_status["electionParticipantMetrics"]["electionTerm"] == status["term"]
    assert old_status["electionParticipantMetrics"]["votedForCandidate"] is True


def test_i10_9_roles_db_hash_maintenance_and_defaults(members: list[EmulatorProcess]) -> None:
    primary = wait_primary(members)
    wait_all_healthy(primary)
    admin = RawClient(primary.address)
    roles = {r["role"] for r in admin.run("admin", {"rolesInfo": 1, "showBuiltinRoles": True})["roles"]}
    assert {"root", "clusterMonitor", "readWriteAnyDatabase", "read", "readWrite"} <= roles
    app_roles = {r["role"] for r in admin.run("app", {"rolesInfo": 1, "showBuiltinRoles": True})["roles"]}
    assert "readWrite" in app_roles and "root" not in app_roles
    assert admin.run("app", {"rolesInfo": 1})["roles"] == []  # no user-defined roles

    defaults = admin.run("admin", {"getDefaultRWConcern": 1})
    assert defaults["defaultWriteConcern"] == {"w": "majority", "wtimeout": 0}
    assert defaults["defaultWriteConcernSource"] == "implicit"
    assert defaults["defaultReadConcern"] == {"level": "local"}
    parameters = admin.run("admin", {"getParameter": "*"})
    assert parameters["shutdownTimeoutMillisForSignaledShutdown"] == 500  # typed, from --setParameter
    assert parameters["periodicNoopIntervalSecs"] == 10 and parameters["enableElectionHandoff"] is True

    with set_client(w="majority", wtimeoutMS=30000) as client:
        write_until_acknowledged(lambda: client.app.hashed.insert_many([{"_id": i, "v": i * i} for i in range(50)]))

    def same_hash_everywhere() -> str | None:
        hashes = {RawClient(m.address).run("app", {"dbHash": 1})["md5"] for m in members}
        return hashes.pop() if len(hashes) == 1 else None

    digest = wait_for(same_hash_everywhere, 60, "dbHash to agree on every member")
    reply = admin.run("app", {"dbHash": 1, "collections": ["hashed"]})
    assert set(reply["collections"]) == {"hashed"} and reply["md5"] != digest

    secondary = next(m for m in members if m is not primary)
    maintenance = RawClient(secondary.address)
    assert admin.run("admin", {"replSetMaintenance": True})["codeName"] == "NotSecondary"
    assert maintenance.run("admin", {"replSetMaintenance": True})["ok"] == 1.0
    try:
        assert maintenance.run("admin", {"replSetGetStatus": 1})["myState"] == 3  # RECOVERING
        read = maintenance.run("app", {"find": "hashed", "$readPreference": {"mode": "secondaryPreferred"}})
        assert read["codeName"] == "NotPrimaryOrSecondary"
        wait_for(
            lambda: (
                {m["name"]: m["stateStr"] for m in admin.run("admin", {"replSetGetStatus": 1})["members"]}[
                    secondary.address
                ]
                == "RECOVERING"
            ),
            30,
            "the primary to see the member RECOVERING",
        )
    finally:
        assert maintenance.run("admin", {"replSetMaintenance": False})["ok"] == 1.0
    assert maintenance.run("admin", {"replSetGetStatus": 1})["myState"] == 2
    assert maintenance.run("admin", {"replSetMaintenance": False})["codeName"] == "OperationFailed"


def test_i10_10_write_concern_errors_at_once_with_mongod_codes(members: list[EmulatorProcess]) -> None:
    primary = wait_primary(members)
    client = RawClient(primary.address)
    unknown_mode = "No write concern mode named 'dc2' found in replica set configuration"
    cases = (
        ({"w": 4}, 100, "UnsatisfiableWriteConcern", "Not enough data-bearing nodes"),
        ({"w": "dc2"}, 79, "UnknownReplWriteConcern", unknown_mode),
    )
    for write_concern, code, code_name, message in cases:
        started = time.monotonic()
        reply = client.run("app", {"insert": "wc", "documents": [{}], "writeConcern": write_concern})
        assert time.monotonic() - started < 5  # at once, not after waiting
        assert reply["ok"] == 1.0 and reply["n"] == 1  # the write itself is done, like mongod
        error = reply["writeConcernError"]
        assert (error["code"], error["codeName"], error["errmsg"]) == (code, code_name, message)
        assert error["errInfo"]["writeConcern"]["provenance"] == "clientSupplied"
    malformed = client.run("app", {"insert": "wc", "documents": [{}], "writeConcern": {"w": True}})
    assert malformed["codeName"] == "FailedToParse"
    assert client.run("app", {"ping": 1})["ok"] == 1.0  # the connection survives


def test_i10_11_step_downs_cost_a_retryable_writer_nothing(members: list[EmulatorProcess]) -> None:
    unfreeze_all(members)
    wait_all_healthy(wait_primary(members))
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        with set_client(w="majority", retryWrites=True) as client:
            collection = client.app.get_collection("ride_through")
            index = 0
            while not stop.is_set():
                try:
                    collection.insert_one({"_id": index})
                    acknowledged.append(index)
                except Exception as exc:  # every error counts: a step-down must cost the writer nothing
                    errors.append(exc)
                index += 1

    thread = threading.Thread(target=writer, name="retryable-writer")
    thread.start()
    try:
        for _round in range(5):
            primary = wait_primary(members)
            wait_all_healthy(primary)
            before = len(acknowledged)
            wait_for(lambda b=before: len(acknowledged) >= b + 5, 60, "the writer to make progress")
            reply = RawClient(primary.address).run("admin", {"replSetStepDown": 4, "secondaryCatchUpPeriodSecs": 3})
            assert reply["ok"] == 1.0, reply
            wait_primary(members, other_than=primary)
            unfreeze_all(members)
        after = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= after + 5, 60, "the writer to make progress on the last primary")
    finally:
        stop.set()
        thread.join(timeout=120)
    assert errors == []
    with set_client() as client:
        stored = {d["_id"] for d in client.app.ride_through.find({}, {"_id": 1})}
    assert set(acknowledged) <= stored


def test_killing_the_primary_elects_another_and_keeps_majority_writes(members: list[EmulatorProcess]) -> None:
    primary = wait_primary(members)
    wait_all_healthy(primary)
    acknowledged: list[int] = []
    with set_client(w="majority", wtimeoutMS=30000) as client:
        for index in range(100, 130):
            write_until_acknowledged(
                lambda i=index: client.app.failover.replace_one({"_id": i}, {"_id": i}, upsert=True)
            )
            acknowledged.append(index)

    primary.kill()  # SIGKILL: no stepdown, no flush
    survivors = [m for m in members if m is not primary]
    new_primary = wait_primary(survivors)

    with set_client(w="majority", wtimeoutMS=30000) as client:
        # The set takes majority writes with one member down.
        write_until_acknowledged(lambda: client.app.failover.replace_one({"_id": 999}, {"_id": 999}, upsert=True))
        stored = {d["_id"] for d in client.app.failover.find()}
    assert set(acknowledged) <= stored
    assert new_primary is not primary

    # The killed member comes back as a secondary and catches up from its durable data.
    primary.start()
    primary.wait_listening()

    def caught_up() -> bool:
        with direct(primary) as client:
            return client.app.failover.count_documents({}) == len(acknowledged) + 1

    wait_for(caught_up, FAILOVER_TIMEOUT, "the restarted member to catch up")
    status = wait_all_healthy(new_primary)
    assert {m["name"]: m["stateStr"] for m in status["members"]}[primary.address] == "SECONDARY"


def test_step_down_without_an_electable_secondary_fails_with_exceeded_time_limit(
    members: list[EmulatorProcess],
) -> None:
    primary = wait_primary(members)
    admin = RawClient(primary.address)
    config = admin.run("admin", {"replSetGetConfig": 1})["config"]
    for member in config["members"]:
        member["priority"] = 1.0 if member["host"] == primary.address else 0.0
    config["version"] += 1
    reconfig = admin.run("admin", {"replSetReconfig": config})
    assert reconfig["ok"] == 1.0, reconfig

    with direct(primary) as client, pytest.raises(OperationFailure) as failure:
        client.admin.command({"replSetStepDown": 10, "secondaryCatchUpPeriodSecs": 1})
    assert failure.value.code == 262  # ExceededTimeLimit
    assert "No electable secondaries caught up" in str(failure.value)
    assert RawClient(primary.address).run("admin", {"hello": 1})["isWritablePrimary"] is True
