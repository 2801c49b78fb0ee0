"""Issue 12, emulator points 1-4 on one replica set (127.0.40.61-64), in file order:

- A (.61, primary), B (.62) and C (.63) encrypt with a local key file (``security.encryptionKeyFile``); every
  member caps its oplog at 1 MB (``--oplogSize 1``). The set is filled with 9000 documents over three
  databases and nine collections, with secondary indexes.
- point 1 and 4: C is converted as an operator would: stopped, its dbPath moved aside, restarted empty with
  KMIP encryption. It initial-syncs (STARTUP2, initialSyncStatus progress) at a low copy rate while a
  retryable w:majority writer keeps writing, ends SECONDARY with every acknowledged write, and every file of its
  dbPath is encrypted under its own KMIP keystore.
- point 2: D (.64, plain, non-voting) initial-syncs from a secondary that goes away twice: restarted at once,
  the clone resumes; killed and left down past initialSyncTransientErrorRetryPeriodSeconds, the attempt fails and a new
  one starts from another source. D is never SECONDARY with partial data.
- point 3: B, down while more than its oplog window is written, comes back too stale: RECOVERING (maintenance
  mode) with mongod's 21126, until it is resynced.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from psmdb_emulator import storage
from psmdb_emulator.lab import KmipAdmin, KmipLab
from psmdb_emulator.server.testing import (
    QUICK_SHUTDOWN,
    EmulatorProcess,
    RawClient,
    initiate_and_step_up,
    member_states,
    terminate_all,
    wait_for,
)

HOSTS = {"a": "127.0.40.61", "b": "127.0.40.62", "c": "127.0.40.63", "d": "127.0.40.64", "e": "127.0.40.65"}
PORT = 27017
SET_NAME = "rsis"
SETTINGS = {"heartbeatIntervalMillis": 1000, "electionTimeoutMillis": 10000}
CANARY = "PLAINTEXT-CANARY-5e1f"
DATABASES = ("app0", "app1", "app2")
COLLECTIONS = ("c0", "c1", "c2")
DOCS_PER_COLLECTION = 1000
TIMEOUT = 240.0
C_RATE = 250_000  # bytes/s: C's ~1.3 MB clone takes about 5 s
D_RATE = 100_000
D_OUTAGE_SECS = 8
BASE_ARGS = ["--replSet", SET_NAME, "--oplogSize", "1", *QUICK_SHUTDOWN]


@dataclass
class Fleet:
    workdir: Path
    key_file: Path
    kmip: KmipLab
    members: dict[str, EmulatorProcess] = field(default_factory=dict)

    def key_file_member(self, name: str) -> EmulatorProcess:
        args = [*BASE_ARGS, "--enableEncryption", "--encryptionKeyFile", str(self.key_file)]
        return EmulatorProcess(self.workdir / name, HOSTS[name], PORT, args, use_launcher=True)

    def running(self) -> list[EmulatorProcess]:
        return [member for member in self.members.values() if member.alive()]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, kmip_lab: KmipLab) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("initialsync")
    key_file = workdir / "master.key"
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    key_file.chmod(0o600)
    fleet = Fleet(workdir, key_file, kmip_lab)
    for name in ("a", "b", "c"):
        (workdir / name).mkdir()
        fleet.members[name] = fleet.key_file_member(name)
    try:
        for member in fleet.members.values():
            member.start()
        for member in fleet.members.values():
            member.wait_listening()
        initiate_and_step_up([fleet.members[n] for n in ("a", "b", "c")], SET_NAME, **SETTINGS)
        load_data(fleet.members["a"])
        yield fleet
    finally:
        terminate_all(list(fleet.members.values()))


def load_data(primary: EmulatorProcess) -> None:
    with MongoClient(primary.address, directConnection=True) as client:
        for db in DATABASES:
            for coll in COLLECTIONS:
                documents = [
                    {"_id": n, "n": n, "canary": CANARY, "pad": secrets.token_hex(24)}
                    for n in range(DOCS_PER_COLLECTION)
                ]
                client[db][coll].insert_many(documents)  # implicit default write concern: w: "majority"
            client[db]["c0"].create_index("n")
            client[db]["c1"].create_index([("pad", 1), ("n", -1)], name="pad_n")


class Writer:
    """A retryable w:majority writer (pymongo's defaults) recording every acknowledged _id."""

    def __init__(self, fleet: Fleet, collection: str) -> None:
        hosts = ",".join(f"{HOSTS[name]}:{PORT}" for name in ("a", "b", "c"))
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            f"mongodb://{hosts}/?replicaSet={SET_NAME}", serverSelectionTimeoutMS=30000
        )
        self.name = collection
        self._collection = self._client["writer"][collection]
        self._stop = threading.Event()
        self.acknowledged: list[int] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name=f"writer-{collection}", daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self._collection.insert_one({"_id": n, "canary": CANARY})
                self.acknowledged.append(n)
            except PyMongoError as exc:
                self.errors.append(repr(exc))
            n += 1
            self._stop.wait(0.05)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.close()


def status_of(member: EmulatorProcess, **extra: Any) -> dict[str, Any]:
    return RawClient(member.address, timeout=10).run("admin", {"replSetGetStatus": 1, **extra})


def secondary_read(member: EmulatorProcess, db: str, command: dict[str, Any]) -> dict[str, Any]:
    return RawClient(member.address, timeout=30).run(db, {**command, "$readPreference": {"mode": "secondary"}})


def reconfigure(primary: EmulatorProcess, change: Any) -> None:
    admin = RawClient(primary.address)
    config = admin.run("admin", {"replSetGetConfig": 1})["config"]
    change(config)
    config["version"] += 1
    reply = admin.run("admin", {"replSetReconfig": config})
    assert reply["ok"] == 1.0, reply


def add_non_voting_member(fleet: Fleet, name: str, member_id: int, args: list[str]) -> EmulatorProcess:
    """A plain member (the test entry) started empty and added with priority 0, votes 0."""
    (fleet.workdir / name).mkdir()
    member = EmulatorProcess(fleet.workdir / name, HOSTS[name], PORT, args)
    fleet.members[name] = member
    member.start()
    member.wait_listening()
    new_member = {"_id": member_id, "host": member.address, "priority": 0, "votes": 0}
    reconfigure(fleet.members["a"], lambda config: config["members"].append(new_member))
    return member


def wait_has_writes(member: EmulatorProcess, writer: Writer) -> None:
    """Every write the writer got acknowledged is on ``member`` (a secondary)."""
    acknowledged = list(writer.acknowledged)

    def present() -> bool:
        reply = secondary_read(member, "writer", {"count": writer.name, "query": {"_id": {"$in": acknowledged}}})
        return reply.get("n") == len(acknowledged)

    wait_for(present, TIMEOUT, f"every acknowledged write on {member.address}")


def db_hashes(member: EmulatorProcess) -> dict[str, str]:
    return {db: secondary_read(member, db, {"dbHash": 1})["md5"] for db in (*DATABASES, "writer")}


def wait_same_data(reference: EmulatorProcess, member: EmulatorProcess) -> None:
    wait_for(lambda: db_hashes(member) == db_hashes(reference), TIMEOUT, f"{member.address} to hold the same data")


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def watch_until_secondary(member: EmulatorProcess, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """Polls replSetGetStatus until the member is SECONDARY; returns every status seen. Whenever it is
    SECONDARY its cloned collections must be complete (never partial data)."""
    seen: list[dict[str, Any]] = []

    def secondary() -> bool:
        status = status_of(member)
        seen.append(status)
        return status.get("myState") == 2

    wait_for(secondary, timeout, f"{member.address} to finish its initial sync", interval=0.1)
    for db in DATABASES:
        for coll in COLLECTIONS:
            assert secondary_read(member, db, {"count": coll})["n"] == DOCS_PER_COLLECTION, (db, coll)
    return seen


def progress(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [status["initialSyncStatus"] for status in seen if "initialSyncStatus" in status]


def statistics(member: EmulatorProcess) -> list[dict[str, Any]]:
    """The attr of every 21192 "Initial sync status and statistics" line in the member's log."""
    lines = [json.loads(line) for line in member.log_text().splitlines() if '"id":21192' in line]
    return [line["attr"] for line in lines]


def test_i12_1_and_4_key_file_member_converted_to_kmip_by_initial_sync_with_a_writer(fleet: Fleet) -> None:
    a, c_key_file = fleet.members["a"], fleet.members["c"]
    # The key-file members: no encryption options in storage.bson, the keystore under the key file's key.
    key_file_key = base64.b64decode(fleet.key_file.read_text())
    for member in (a, fleet.members["b"]):
        assert "encryption" not in storage.read_storage_metadata(member.db_path)["options"]
        storage.Keystore.open(member.db_path / storage.KEYSTORE_DIR, key_file_key, storage.CIPHER_CBC)
        assert not files_containing(member.db_path, CANARY.encode())

    # Convert C: stop, move the dbPath aside (kept), start empty with KMIP encryption.
    assert c_key_file.terminate() == 0
    c_key_file.db_path.rename(c_key_file.workdir / "db.key-file")
    kmip_args = fleet.kmip.kmip_args()
    knobs = ["--setParameter", f"psmdbEmulatorInitialSyncBytesPerSec={C_RATE}"]
    knobs += ["--setParameter", "collectionClonerBatchSize=200"]
    c = EmulatorProcess(c_key_file.workdir, HOSTS["c"], PORT, [*BASE_ARGS, *kmip_args, *knobs], use_launcher=True)
    fleet.members["c"] = c
    with Writer(fleet, "during_c") as writer:
        c.start()
        c.wait_listening()
        seen = watch_until_secondary(c)
        time.sleep(1)  # keep writing a little after the member is SECONDARY
    assert not writer.errors, writer.errors[:3]
    assert len(writer.acknowledged) > 20

    # STARTUP2 with initialSyncStatus in mongod 7.0's shape, progressing batch by batch, then gone.
    states = [status.get("myState") for status in seen]
    assert 5 in states and states[-1] == 2 and "initialSyncStatus" not in seen[-1]
    reports = [report for report in progress(seen) if "databases" in report]
    assert reports, "no clone progress while in STARTUP2"
    report = reports[-1]
    assert report["method"] == "logical" and report["maxFailedInitialSyncAttempts"] == 10
    assert report["failedInitialSyncAttempts"] == 0
    assert [attempt["status"] for attempt in report["initialSyncAttempts"]] in ([], ["OK"])
    for name in ("initialSyncStart", "totalInitialSyncElapsedMillis", "approxTotalDataSize", "appliedOps"):
        assert name in report
    assert "initialSyncOplogStart" in report and report["totalTimeUnreachableMillis"] == 0
    databases = report["databases"]
    assert {"databasesCloned", "databasesToClone", *DATABASES} <= set(databases)
    collection = databases["app0"]["app0.c0"]
    assert collection["documentsToCopy"] == DOCS_PER_COLLECTION and collection["indexes"] == 2
    copied = sorted({r["approxTotalBytesCopied"] for r in reports})
    assert len(copied) >= 3, copied  # several batches seen, not one snapshot
    assert any(0 < r["approxTotalBytesCopied"] < r["approxTotalDataSize"] for r in reports)
    assert any("remainingInitialSyncEstimatedMillis" in r for r in reports)
    done = statistics(c)[-1]
    assert done["status"] == "successful"
    total = done["statistics"]["approxTotalDataSize"]
    assert total >= len(DATABASES) * len(COLLECTIONS) * DOCS_PER_COLLECTION * 100
    # the copy takes the time the data needs at the configured rate (a lower bound only: no timing upper bound)
    assert done["statistics"]["totalInitialSyncElapsedMillis"] >= 0.9 * total / C_RATE * 1000
    assert done["statistics"]["appliedOps"] > 0  # writes made during the clone were applied after it
    assert '"id":21163' in c.log_text()  # Initial sync done

    # Nothing lost: every acknowledged write, the same data as the primary, the secondary indexes.
    wait_has_writes(c, writer)
    wait_same_data(a, c)
    indexes = secondary_read(c, "app1", {"listIndexes": "c1"})["cursor"]["firstBatch"]
    assert [index["name"] for index in indexes] == ["_id_", "pad_n"]

    # Encrypted under its own KMIP keystore: storage.bson names the key, no plaintext in any file.
    key_id = storage.stored_kmip_key_id(storage.read_storage_metadata(c.db_path))
    assert key_id is not None and f'"kmipKeyIdentifier":"{key_id}"' in c.log_text()  # registered (29116)
    assert not files_containing(c.db_path, CANARY.encode())
    assert files_containing(c_key_file.workdir / "db.key-file", b"PSMDBEMU-ENCRY1")  # the old copy, kept
    master_key = KmipAdmin(fleet.kmip).key(key_id)
    assert master_key is not None
    keystore = storage.Keystore.open(c.db_path / storage.KEYSTORE_DIR, master_key, storage.CIPHER_CBC)
    assert CANARY.encode() in storage.EncryptedDataStore(c.db_path, keystore, None).read_db("app2")
    with pytest.raises(storage.DecryptionError):  # re-encrypted: the key file no longer opens it
        storage.Keystore.open(c.db_path / storage.KEYSTORE_DIR, key_file_key, storage.CIPHER_CBC)


def test_i12_2_sync_source_killed_during_initial_sync_resumes_or_restarts_never_partial(fleet: Fleet) -> None:
    a = fleet.members["a"]
    args = [*BASE_ARGS, "--setParameter", "initialSyncSourceReadPreference=secondary"]
    args += ["--setParameter", f"initialSyncTransientErrorRetryPeriodSeconds={D_OUTAGE_SECS}"]
    args += ["--setParameter", f"psmdbEmulatorInitialSyncBytesPerSec={D_RATE}"]
    args += ["--setParameter", "collectionClonerBatchSize=100"]
    with Writer(fleet, "during_d") as writer:
        d = add_non_voting_member(fleet, "d", 3, args)

        def cloning() -> dict[str, Any] | None:
            status = status_of(d)
            report = status.get("initialSyncStatus", {})
            return status if report.get("approxTotalBytesCopied", 0) > 0 else None

        source_host = wait_for(cloning, TIMEOUT, "D to clone", interval=0.1)["syncSourceHost"]
        # replSetGetStatus {initialSync: 0} leaves the section out; a non-number is a TypeMismatch
        assert "initialSyncStatus" not in status_of(d, initialSync=0)
        assert status_of(d, initialSync="t")["code"] == 14
        source_name = next(name for name, host in HOSTS.items() if f"{host}:{PORT}" == source_host)
        assert source_name in ("b", "c")  # initialSyncSourceReadPreference=secondary
        source = fleet.members[source_name]

        # Stopped and back within the retry period: the same attempt resumes where it was.
        assert source.terminate() == 0
        source.start()
        source.wait_listening()

        def resumed() -> dict[str, Any] | None:
            report = status_of(d).get("initialSyncStatus", {})
            back = report.get("totalTimeUnreachableMillis", 0) > 0 and "syncSourceUnreachableSince" not in report
            return report if back else None

        report = wait_for(resumed, TIMEOUT, "D to resume its clone", interval=0.1)
        assert report["failedInitialSyncAttempts"] == 0

        # Killed for good: after initialSyncTransientErrorRetryPeriodSeconds the attempt fails, a new one starts
        # from scratch with another source; D is SECONDARY only with complete data.
        source.kill()
        seen = watch_until_secondary(d)
        time.sleep(1)
    assert not writer.errors, writer.errors[:3]
    reports = progress(seen)
    outage = [r for r in reports if "syncSourceUnreachableSince" in r]
    assert outage and max(r["currentOutageDurationMillis"] for r in outage) >= (D_OUTAGE_SECS - 1) * 1000
    failed = next(r for r in reversed(reports) if r["failedInitialSyncAttempts"] == 1)
    attempt = failed["initialSyncAttempts"][0]
    assert attempt["syncSource"] == source.address and attempt["status"].startswith("HostUnreachable: ")
    assert attempt["totalTimeUnreachableMillis"] >= D_OUTAGE_SECS * 1000 and attempt["operationsRetried"] > 0
    other = next(m for n, m in fleet.members.items() if n in ("b", "c") and m is not source)
    assert any(status.get("syncSourceHost") == other.address for status in seen)
    assert [s["status"] for s in statistics(d)] == ["in_progress", "successful"]
    assert '"id":21200' in d.log_text()  # Initial sync attempt failed

    wait_has_writes(d, writer)
    wait_same_data(a, d)
    # A plain member keeps documents readable in its files: what the encrypted ones above must never do.
    assert files_containing(d.db_path, CANARY.encode())

    source.start()
    source.wait_listening()
    wait_for(
        lambda: list(member_states(a).values()).count("SECONDARY") == 3, TIMEOUT, "every secondary back", interval=0.2
    )


def oplog_window(member: EmulatorProcess) -> dict[str, Any]:
    """What mongosh's db.getReplicationInfo() computes (database.ts): collStats maxSize/size and the first and
    last entries in natural order."""
    with MongoClient(member.address, directConnection=True) as client:
        local = client.local
        stats = local.command("collStats", "oplog.rs")
        first = local["oplog.rs"].find().sort("$natural", 1).limit(1).next()
        last = local["oplog.rs"].find().sort("$natural", -1).limit(1).next()
        piped = local["oplog.rs"].aggregate([{"$collStats": {"storageStats": {}}}]).next()["storageStats"]
    return {
        "configuredLogSizeMB": stats["maxSize"] / (1024 * 1024),
        "usedMB": stats["size"] / (1024 * 1024),
        "piped_maxSize": piped["maxSize"],
        "tFirst": first["ts"],
        "tLast": last["ts"],
        "timeDiff": last["ts"].time - first["ts"].time,
    }


def test_i12_3_member_down_longer_than_the_oplog_window_is_too_stale_and_goes_recovering(fleet: Fleet) -> None:
    a, b = fleet.members["a"], fleet.members["b"]
    before = oplog_window(a)
    assert before["configuredLogSizeMB"] == 1 and before["piped_maxSize"] == 1024 * 1024
    assert b.terminate() == 0
    with MongoClient(a.address, directConnection=True) as client:
        last_of_b = client.local["oplog.rs"].find().sort("$natural", -1).limit(1).next()["ts"]
        # More than a whole oplog of writes while B is down (A and C make the majority).
        for batch in range(8):
            client["filler"]["f"].insert_many(
                [{"_id": batch * 1000 + n, "pad": secrets.token_hex(64)} for n in range(1000)]
            )
    after = oplog_window(a)
    assert after["tFirst"] > last_of_b, "the oplog window did not move past B's last entry"
    assert after["usedMB"] <= 1.2 and after["timeDiff"] >= 0

    b.start()
    b.wait_listening()

    def too_stale() -> bool:
        return status_of(b).get("myState") == 3 and '"id":21126' in b.log_text()

    wait_for(too_stale, TIMEOUT, "B to go RECOVERING, too stale", interval=0.2)
    line = next(json.loads(text) for text in b.log_text().splitlines() if '"id":21126' in text)
    assert line["s"] == "E" and line["msg"] == (
        "Too stale to catch up. Entering maintenance mode. See "
        "http://dochub.mongodb.org/core/resyncingaverystalereplicasetmember"
    )
    assert "lastOpTimeFetched" in line["attr"] and "earliestOpTimeSeen" in line["attr"]
    assert '"id":5579708' in b.log_text()  # every candidate: "We are too stale to use candidate as a sync source"
    behind = status_of(b)["optimes"]["appliedOpTime"]
    time.sleep(3)
    status = status_of(b)
    assert status["myState"] == 3 and status["optimes"]["appliedOpTime"] == behind  # stays where it was
    assert behind["ts"] <= last_of_b
    assert secondary_read(b, "app0", {"count": "c0"})["code"] == 13436  # NotPrimaryOrSecondary
    assert member_states(a)[b.address] == "RECOVERING"

    # The remedy: resync (a new initial sync from an empty dbPath).
    assert b.terminate() == 0
    b.db_path.rename(b.workdir / "db.stale")
    b.start()
    b.wait_listening()
    watch_until_secondary(b)
    wait_same_data(a, b)


def test_i12_2_exhausted_initial_sync_attempts_end_the_process_with_exit_14(fleet: Fleet) -> None:
    """numInitialSyncAttempts failed attempts: 21202, 21416 and fatal assertion 40088 (quickExit: exit 14). Here
    one attempt that finds no sync source (numInitialSyncConnectAttempts=1, before any heartbeat)."""
    a = fleet.members["a"]
    args = [*BASE_ARGS, "--setParameter", "numInitialSyncAttempts=1"]
    args += ["--setParameter", "numInitialSyncConnectAttempts=1"]
    e = add_non_voting_member(fleet, "e", 4, args)
    try:
        assert e.wait_exit(timeout=TIMEOUT) == 14
    finally:
        reconfigure(a, lambda config: config["members"].remove(next(m for m in config["members"] if m["_id"] == 4)))
    lines = [json.loads(text) for text in e.log_text().splitlines()]
    failed = next(line for line in lines if line["id"] == 21200)
    assert failed["attr"]["attemptsLeft"] == 0
    assert failed["attr"]["error"].startswith("InitialSyncOplogSourceMissing: ")
    assert [line["id"] for line in lines if line["id"] in (21202, 21416, 23095)] == [21202, 21416, 23095]
    assert next(line for line in lines if line["id"] == 23095)["attr"]["msgid"] == 40088
    assert not any(line["id"] == 21358 and line["attr"]["newState"] == "SECONDARY" for line in lines)
