"""Logical initial sync, in the shape of mongod 7.0's InitialSyncer (src/mongo/db/repl/initial_syncer.cpp and the
cloners; facts and sources in the README, "Initial sync").

An attempt: choose a sync source, truncate the oplog and drop every replicated database, read the top of the
source's oplog (beginFetching = beginApplying), start an oplog fetcher that buffers the source's entries from
there while every database is cloned collection by collection in batches (at the emulator-only rate
``psmdbEmulatorInitialSyncBytesPerSec``), read the top of the oplog again (stopTimestamp), apply the buffered
entries up to it, done. Data goes through the member's own catalog and DataStore, so an encrypted member
stores every cloned document under its own keystore.

Transient errors (the source unreachable or restarting) are retried against the same source for
``initialSyncTransientErrorRetryPeriodSeconds`` (24 h by default); past that the attempt fails and a new one
starts from scratch, choosing a source again, up to ``numInitialSyncAttempts`` (10), after which mongod
exits (fatal assertion 40088, exit 14). Until an attempt succeeds the member stays in STARTUP2 with the
``doingInitialSync`` flag set, so a restart starts over instead of serving partial data.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bson
from bson.int64 import Int64
from bson.timestamp import Timestamp

from .catalog import LOCAL_DB, OPLOG, id_key
from .errors import RETRIABLE_CODES, code_name
from .peer import PeerClient, PeerError
from .wire import CODEC_OPTIONS

if TYPE_CHECKING:
    from .replset import ReplicaSet

MINVALID_COLLECTION = "replset.minvalid"
INITIAL_SYNC_FLAG = "doingInitialSync"
EXIT_ABRUPT = 14  # fassertFailedWithStatusNoTrace -> quickExit(EXIT_ABRUPT)
_RETRY_WAIT_SECS = 1.0  # InitialSyncerInterface::Options initialSyncRetryWait / syncSourceRetryWait [I]
_OPERATION_RETRY_SECS = 1.0  # pause between retries of a transient error [I]
_FIRST_BATCH_DOCS = 101  # a find without batchSize returns 101 documents first
_MAX_BATCH_BYTES = 16 * 1024 * 1024
_APPLY_BATCH = 500
_REMOTE_TIMEOUT_SECS = 30.0
_READ_PREFERENCE = {"mode": "secondaryPreferred"}  # ReadPreferenceSetting::secondaryPreferredMetadata()
_HOST_UNREACHABLE = 6
_NO_MATCHING_DOCUMENT = 47
_NAMESPACE_NOT_FOUND = 26
_INITIAL_SYNC_OPLOG_SOURCE_MISSING = 114


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class _Stopped(Exception):
    """The server is shutting down: the attempt is abandoned (CallbackCanceled), nothing is recorded."""


class AttemptFailed(Exception):
    """An initial sync attempt failed; ``status`` is mongod's Status string ("<CodeName>: <reason>")."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code_name(code)}: {reason}")
        self.code = code
        self.status = str(self)


def _failure(exc: PeerError, context: str) -> AttemptFailed:
    code = int(exc.reply.get("code", 8)) if exc.reply else _HOST_UNREACHABLE
    return AttemptFailed(code, f"{context} :: caused by :: {exc}")


def _retriable(exc: PeerError) -> bool:
    return exc.reply is None or int(exc.reply.get("code", 0)) in RETRIABLE_CODES


@dataclass
class _CollectionStats:
    documents_to_copy: int = 0
    documents_copied: int = 0
    indexes: int = 0
    fetched_batches: int = 0
    received_batches: int = 0
    bytes_to_copy: int = 0
    avg_obj_size: int = 0
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    @property
    def approx_bytes_copied(self) -> int:
        return self.documents_copied * self.avg_obj_size

    def document(self) -> dict[str, Any]:
        """CollectionCloner::Stats::append."""
        doc: dict[str, Any] = {
            "documentsToCopy": Int64(self.documents_to_copy),
            "documentsCopied": Int64(self.documents_copied),
            "indexes": Int64(self.indexes),
            "fetchedBatches": Int64(self.fetched_batches),
            "bytesToCopy": Int64(self.bytes_to_copy),
        }
        if self.bytes_to_copy:
            doc["approxBytesCopied"] = Int64(self.approx_bytes_copied)
        if self.start is not None:
            doc["start"] = self.start
            if self.end is not None:
                doc["end"] = self.end
                doc["elapsedMillis"] = Int64(int((self.end - self.start).total_seconds() * 1000))
        doc["receivedBatches"] = Int64(self.received_batches)
        return doc


@dataclass
class _DatabaseStats:
    collections: dict[str, _CollectionStats] = field(default_factory=dict)
    cloned_collections: int = 0
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    def document(self, db: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"collections": len(self.collections), "clonedCollections": self.cloned_collections}
        if self.start is not None:
            doc["start"] = self.start
            if self.end is not None:
                doc["end"] = self.end
                doc["elapsedMillis"] = Int64(int((self.end - self.start).total_seconds() * 1000))
        for name, stats in self.collections.items():
            doc[f"{db}.{name}"] = stats.document()
        return doc


@dataclass
class _Attempt:
    """What one attempt knows; read by replSetGetStatus under the node lock."""

    started: float = field(default_factory=time.monotonic)
    sync_source: str = ""
    begin_fetching: Timestamp | None = None
    begin_applying: Timestamp | None = None
    stop: Timestamp | None = None
    applied_ops: int = 0
    databases: dict[str, _DatabaseStats] | None = None  # set once the databases to clone are known
    databases_cloned: int = 0
    # InitialSyncSharedData: one outage clock for the cloners and the oplog fetcher
    unreachable_since: datetime.datetime | None = None
    unreachable_since_mono: float | None = None
    total_unreachable: float = 0.0
    operations_retried: int = 0
    # the oplog fetcher
    buffer: list[dict[str, Any]] = field(default_factory=list)
    fetcher_error: AttemptFailed | None = None
    fetcher_stop: threading.Event = field(default_factory=threading.Event)


class InitialSyncer:
    """Runs in the replication thread while the member is in STARTUP2; all shared state is under node.lock."""

    def __init__(self, repl: ReplicaSet) -> None:
        self.repl = repl
        self.node = repl.node
        self.start = utcnow()
        self.started = time.monotonic()
        self.end: datetime.datetime | None = None
        self.failed_attempts = 0
        self.max_attempts = 10
        self.attempts: list[dict[str, Any]] = []
        self.attempt: _Attempt | None = None
        self._allowed_outage = 0.0

    # -- replSetGetStatus.initialSyncStatus ---------------------------------------------------------------------
    def status_document(self) -> dict[str, Any]:
        """InitialSyncer::_getInitialSyncProgress_inlock (lock held)."""
        doc: dict[str, Any] = {
            "method": "logical",
            "failedInitialSyncAttempts": self.failed_attempts,
            "maxFailedInitialSyncAttempts": self.max_attempts,
            "initialSyncStart": self.start,
        }
        if self.end is not None:
            doc["initialSyncEnd"] = self.end
        doc["totalInitialSyncElapsedMillis"] = int((time.monotonic() - self.started) * 1000)
        doc["initialSyncAttempts"] = list(self.attempts)
        attempt = self.attempt
        if attempt is None:
            return doc
        if attempt.databases is not None:
            collections = [c for stats in attempt.databases.values() for c in stats.collections.values()]
            total = sum(c.bytes_to_copy for c in collections)
            copied = sum(c.approx_bytes_copied for c in collections)
            doc["approxTotalDataSize"] = Int64(total)
            doc["approxTotalBytesCopied"] = Int64(copied)
            if copied > 0:
                rate = doc["totalInitialSyncElapsedMillis"] / copied
                doc["remainingInitialSyncEstimatedMillis"] = Int64(int(rate * (total - copied)))
        doc["appliedOps"] = Int64(attempt.applied_ops)
        if attempt.begin_applying is not None:
            doc["initialSyncOplogStart"] = attempt.begin_applying
        if attempt.begin_fetching is not None and attempt.begin_fetching != attempt.begin_applying:
            doc["initialSyncOplogFetchingStart"] = attempt.begin_fetching
        if attempt.stop is not None:
            doc["initialSyncOplogEnd"] = attempt.stop
        if attempt.unreachable_since is not None and attempt.unreachable_since_mono is not None:
            doc["syncSourceUnreachableSince"] = attempt.unreachable_since
            doc["currentOutageDurationMillis"] = Int64(int((time.monotonic() - attempt.unreachable_since_mono) * 1000))
        doc["totalTimeUnreachableMillis"] = Int64(int(self._total_unreachable(attempt) * 1000))
        if attempt.databases is not None:
            databases: dict[str, Any] = {
                "databasesToClone": len(attempt.databases) - attempt.databases_cloned,
                "databasesCloned": attempt.databases_cloned,
            }
            for name, stats in attempt.databases.items():
                databases[name] = stats.document(name)
            doc["databases"] = databases
        return doc

    @staticmethod
    def _total_unreachable(attempt: _Attempt) -> float:
        current = time.monotonic() - attempt.unreachable_since_mono if attempt.unreachable_since_mono else 0.0
        return attempt.total_unreachable + current

    # -- the attempts ---------------------------------------------------------------------------------------------
    def run(self) -> bool:
        """Initial sync until it succeeds (True) or the server stops (False). Exhausting the attempts ends the
        process with exit code 14, as mongod's fatal assertion 40088 does."""
        parameters = self.node.settings.parameters
        with self.node.lock:
            self.max_attempts = int(parameters["numInitialSyncAttempts"])
            # Loaded once, when the initial syncer starts (InitialSyncer::_setUp_inlock; SERVER-111372).
            self._allowed_outage = float(parameters["initialSyncTransientErrorRetryPeriodSeconds"])
            set_initial_sync_flag(self.node, True)
        while True:
            self.node.logger.log(
                "I",
                "INITSYNC",
                21164,
                "Starting initial sync attempt",
                {"initialSyncAttempt": self.failed_attempts + 1, "initialSyncMaxAttempts": self.max_attempts},
            )
            attempt = _Attempt()
            with self.node.lock:
                self.attempt = attempt
            try:
                self._run_attempt(attempt)
            except _Stopped:
                attempt.fetcher_stop.set()
                return False
            except AttemptFailed as exc:
                attempt.fetcher_stop.set()
                if self._attempt_failed(attempt, exc):
                    continue
                return False
            attempt.fetcher_stop.set()
            self._finish(attempt)
            return True

    def _record(self, attempt: _Attempt, status: str) -> None:
        self.attempts.append(
            {
                "durationMillis": int((time.monotonic() - attempt.started) * 1000),
                "status": status,
                "syncSource": attempt.sync_source,
                "rollBackId": 1 if attempt.sync_source else -1,
                "operationsRetried": attempt.operations_retried,
                "totalTimeUnreachableMillis": int(self._total_unreachable(attempt) * 1000),
            }
        )

    def _attempt_failed(self, attempt: _Attempt, exc: AttemptFailed) -> bool:
        """Records a failed attempt; True when another one may start."""
        self.node.logger.log("I", "INITSYNC", 21191, "Initial sync attempt finishing up")
        with self.node.lock:
            self._record(attempt, exc.status)
            self.failed_attempts += 1
            has_retries = self.failed_attempts < self.max_attempts
            statistics = self.status_document()
        self.node.logger.log(
            "I",
            "INITSYNC",
            21192,
            "Initial sync status and statistics",
            {"status": "in_progress" if has_retries else "failed", "statistics": statistics},
        )
        self.node.logger.log(
            "E",
            "INITSYNC",
            21200,
            "Initial sync attempt failed",
            {"attemptsLeft": self.max_attempts - self.failed_attempts, "error": exc.status},
        )
        if not has_retries:
            self._fatal(exc)
        return not self.repl.stop_requested(_RETRY_WAIT_SECS)

    def _fatal(self, exc: AttemptFailed) -> None:
        """mongod: 21202, then the replication coordinator's 21416 and fassert 40088 (quickExit(EXIT_ABRUPT))."""
        log = self.node.logger.log
        log("F", "INITSYNC", 21202, "The maximum number of retries have been exhausted for initial sync")
        log(
            "E",
            "REPL",
            21416,
            "Initial sync failed, shutting down now. Restart the server to attempt a new initial sync",
        )
        log(
            "F",
            "ASSERT",
            23095,
            "Fatal assertion",
            {"msgid": 40088, "error": exc.status, "file": "src/mongo/db/repl/replication_coordinator_impl.cpp"},
        )
        log("F", "ASSERT", 23096, "\n\n***aborting after fassert() failure\n\n")
        os._exit(EXIT_ABRUPT)

    def _finish(self, attempt: _Attempt) -> None:
        """_tearDown_inlock: the data is durable, then the initial sync flag is cleared."""
        self.node.logger.log("I", "INITSYNC", 21191, "Initial sync attempt finishing up")
        with self.node.lock:
            self._record(attempt, "OK")
            self.end = utcnow()
            statistics = self.status_document()
            self.node.wait_durable(self.node.catalog.generation)
            set_initial_sync_flag(self.node, False)
            self.node.wait_durable(self.node.catalog.generation)
        self.node.logger.log(
            "I",
            "INITSYNC",
            21192,
            "Initial sync status and statistics",
            {"status": "successful", "statistics": statistics},
        )
        self.node.logger.log(
            "I", "INITSYNC", 21163, "Initial sync done", {"durationSeconds": int(time.monotonic() - self.started)}
        )

    def _run_attempt(self, attempt: _Attempt) -> None:
        source = self._choose_source()
        with self.node.lock:
            attempt.sync_source = source
            self.repl.sync_source = source
            self._truncate_oplog_and_drop_replicated_databases()
        client = self.node.new_peer_client(source)
        try:
            top = self._last_oplog_entry(client, attempt, "error while getting last oplog entry for begin timestamp")
            with self.node.lock:
                attempt.begin_fetching = attempt.begin_applying = top["ts"]
                attempt.buffer.append(top)  # OplogFetcher::StartingPoint::kEnqueueFirstDoc
            fetcher = threading.Thread(
                target=self._fetch_oplog, args=(source, attempt), name="InitialSyncOplogFetcher", daemon=True
            )
            fetcher.start()
            try:
                self._clone_all(client, attempt)
                self.node.logger.log(
                    "I",
                    "INITSYNC",
                    21183,
                    "Finished cloning data. Beginning oplog replay",
                    {"databaseClonerFinishStatus": "OK"},
                )
                stop = self._last_oplog_entry(client, attempt, "error fetching last oplog entry for stop timestamp")
                with self.node.lock:
                    attempt.stop = stop["ts"]
                self._apply_until_stop(attempt, stop)
            finally:
                attempt.fetcher_stop.set()
                fetcher.join(timeout=_REMOTE_TIMEOUT_SECS)
        finally:
            client.close()

    def _check(self, attempt: _Attempt) -> None:
        if self.repl.stop_requested(0):
            raise _Stopped()
        if attempt.fetcher_error is not None:
            raise attempt.fetcher_error

    # -- sync source -----------------------------------------------------------------------------------------------
    def _choose_source(self) -> str:
        tries = int(self.node.settings.parameters["numInitialSyncConnectAttempts"])
        for attempt in range(tries):
            with self.node.lock:
                member = self.repl.choose_initial_sync_source()
            if member is not None:
                self.node.logger.log("I", "REPL", 21799, "Sync source candidate chosen", {"syncSource": member["host"]})
                return str(member["host"])
            if attempt + 1 < tries and self.repl.stop_requested(_RETRY_WAIT_SECS):
                raise _Stopped()
        raise AttemptFailed(
            _INITIAL_SYNC_OPLOG_SOURCE_MISSING,
            "error while choosing sync source :: caused by :: "
            "No valid sync source found in current replica set to do an initial sync.",
        )

    def _truncate_oplog_and_drop_replicated_databases(self) -> None:
        started = time.monotonic()
        catalog = self.node.catalog
        catalog.truncate_oplog()
        self.node.durable_entry = None
        self.node.logger.log(
            "I",
            "INITSYNC",
            21173,
            "Initial syncer oplog truncation finished",
            {"durationMillis": int((time.monotonic() - started) * 1000)},
        )
        for name in [n for n in catalog.dbs if n != LOCAL_DB]:
            catalog.drop_database(name)
        self.node.sessions.clear()

    # -- remote operations with mongod's transient-error retries ---------------------------------------------------
    def _remote(self, client: PeerClient, attempt: _Attempt, db: str, command: dict[str, Any], context: str) -> Any:
        """Runs a command on the sync source; a transient failure is retried against the same source until the
        outage exceeds initialSyncTransientErrorRetryPeriodSeconds (InitialSyncSharedData::shouldRetryOperation)."""
        while True:
            self._check(attempt)
            try:
                reply = client.command(db, command, timeout=_REMOTE_TIMEOUT_SECS)
            except PeerError as exc:
                if not _retriable(exc) or not self._may_retry(attempt):
                    raise _failure(exc, context) from None
                if self.repl.stop_requested(_OPERATION_RETRY_SECS):
                    raise _Stopped() from None
                continue
            self._reachable(attempt)
            return reply

    def _may_retry(self, attempt: _Attempt) -> bool:
        with self.node.lock:
            now = time.monotonic()
            if attempt.unreachable_since_mono is None:
                attempt.unreachable_since_mono = now
                attempt.unreachable_since = utcnow()
            attempt.operations_retried += 1
            return now - attempt.unreachable_since_mono < self._allowed_outage

    def _reachable(self, attempt: _Attempt) -> None:
        with self.node.lock:
            if attempt.unreachable_since_mono is not None:
                attempt.total_unreachable += time.monotonic() - attempt.unreachable_since_mono
                attempt.unreachable_since_mono = None
                attempt.unreachable_since = None

    def _last_oplog_entry(self, client: PeerClient, attempt: _Attempt, context: str) -> dict[str, Any]:
        """find local.oplog.rs sort {$natural: -1} limit 1, as the initial syncer asks for it."""
        command = {"find": OPLOG, "sort": {"$natural": -1}, "limit": 1, "$readPreference": _READ_PREFERENCE}
        reply = self._remote(client, attempt, LOCAL_DB, command, context)
        batch = reply["cursor"]["firstBatch"]
        if not batch:
            raise AttemptFailed(_NO_MATCHING_DOCUMENT, f"{context} :: caused by :: no oplog entry found")
        return dict(batch[0])

    # -- cloning ---------------------------------------------------------------------------------------------------
    def _clone_all(self, client: PeerClient, attempt: _Attempt) -> None:
        """AllDatabaseCloner: every database but local, admin first."""
        reply = self._remote(
            client,
            attempt,
            "admin",
            {"listDatabases": 1, "nameOnly": True, "$readPreference": _READ_PREFERENCE},
            "error cloning databases",
        )
        names = [d["name"] for d in reply["databases"] if d["name"] != LOCAL_DB]
        names.sort(key=lambda name: (name != "admin", name))
        with self.node.lock:
            attempt.databases = {name: _DatabaseStats() for name in names}
        for name in names:
            self._clone_database(client, attempt, name)
            with self.node.lock:
                attempt.databases_cloned += 1

    def _clone_database(self, client: PeerClient, attempt: _Attempt, db: str) -> None:
        assert attempt.databases is not None
        stats = attempt.databases[db]
        context = f"error cloning databases :: caused by :: error cloning database {db}"
        reply = self._remote(
            client,
            attempt,
            db,
            {"listCollections": 1, "filter": {"type": "collection"}, "$readPreference": _READ_PREFERENCE},
            context,
        )
        infos = list(reply["cursor"]["firstBatch"])
        with self.node.lock:
            stats.start = utcnow()
            for info in infos:
                stats.collections[info["name"]] = _CollectionStats()
        for info in infos:
            try:
                self._clone_collection(client, attempt, db, info["name"], dict(info.get("options") or {}), context)
            except AttemptFailed as exc:
                if exc.code != _NAMESPACE_NOT_FOUND:
                    raise
                # Dropped on the source meanwhile: the oplog replay drops it here too.
                self.node.logger.log(
                    "I",
                    "INITSYNC",
                    21132,
                    "CollectionCloner stopped because collection was dropped on source",
                    {"namespace": f"{db}.{info['name']}"},
                )
            with self.node.lock:
                stats.cloned_collections += 1
        with self.node.lock:
            stats.end = utcnow()

    def _clone_collection(
        self, client: PeerClient, attempt: _Attempt, db: str, name: str, options: dict[str, Any], context: str
    ) -> None:
        """CollectionCloner: collStats (sizes), count, listIndexes, create, then the documents in batches."""
        assert attempt.databases is not None
        stats = attempt.databases[db].collections[name]
        context = f"{context} :: caused by :: Error cloning collection '{db}.{name}'"
        with self.node.lock:
            stats.start = utcnow()

        def run(command: str) -> Any:
            return self._remote(client, attempt, db, {command: name, "$readPreference": _READ_PREFERENCE}, context)

        coll_stats, count, indexes = run("collStats"), run("count"), run("listIndexes")
        specs = [{k: v for k, v in spec.items() if k != "ns"} for spec in indexes["cursor"]["firstBatch"]]
        with self.node.lock:
            stats.bytes_to_copy = int(coll_stats.get("size", 0))
            stats.avg_obj_size = int(coll_stats.get("avgObjSize", 0)) if stats.bytes_to_copy else 0
            stats.documents_to_copy = int(count.get("n", 0))
            stats.indexes = len(specs)
            collection, _ = self.node.catalog.ensure_collection(db, name, options)
            collection.indexes = specs or collection.indexes
            self.node.catalog.mark_dirty(db)
        batch_size = int(self.node.settings.parameters["collectionClonerBatchSize"])
        after: bytes | None = None
        first = True
        while True:
            limit = batch_size or (_FIRST_BATCH_DOCS if first else 1 << 30)
            command: dict[str, Any] = {
                "emuCloneBatch": name,
                "db": db,
                "after": bson.Binary(after) if after is not None else None,
                "limit": limit,
                "$readPreference": _READ_PREFERENCE,
            }
            reply = self._remote(client, attempt, LOCAL_DB, command, context)
            first = False
            blobs = [bytes(blob) for blob in reply["documents"]]
            if not blobs:
                break
            with self.node.lock:
                stats.received_batches += 1
            self._throttle(sum(len(blob) for blob in blobs))
            documents = [bson.decode(blob, CODEC_OPTIONS) for blob in blobs]
            with self.node.lock:
                for document in documents:
                    self.node.catalog.replace(db, name, document)
                stats.documents_copied += len(documents)
                stats.fetched_batches += 1
            after = id_key(documents[-1]["_id"])
            if reply.get("exhausted"):
                break
        with self.node.lock:
            stats.end = utcnow()

    def _throttle(self, size: int) -> None:
        """The batch takes as long as copying ``size`` bytes at psmdbEmulatorInitialSyncBytesPerSec."""
        rate = int(self.node.settings.parameters["psmdbEmulatorInitialSyncBytesPerSec"])
        if self.repl.stop_requested(size / rate):
            raise _Stopped()

    # -- the oplog fetcher and the applier ------------------------------------------------------------------------
    def _fetch_oplog(self, source: str, attempt: _Attempt) -> None:
        """Buffers the source's oplog from beginFetching while the data is cloned (mongod keeps the buffer in
        local.temp_oplog_buffer; here it is in memory). A restart after a transient error needs the last fetched
        entry to be still in the source's oplog."""
        client = self.node.new_peer_client(source)
        try:
            while not attempt.fetcher_stop.is_set() and not self.repl.stop_requested(0):
                with self.node.lock:
                    last = attempt.buffer[-1]
                request = {
                    "emuFetchOplog": 1,
                    "after": {"ts": last["ts"], "t": last["t"]},
                    "maxWaitMS": 500,
                    "limit": 1000,
                }
                try:
                    reply = client.command(LOCAL_DB, request, timeout=_REMOTE_TIMEOUT_SECS)
                except PeerError as exc:
                    if _retriable(exc) and self._may_retry(attempt):
                        attempt.fetcher_stop.wait(_OPERATION_RETRY_SECS)
                        continue
                    with self.node.lock:
                        attempt.fetcher_error = _failure(exc, "error fetching oplog during initial sync")
                    self.node.logger.log(
                        "I",
                        "INITSYNC",
                        21181,
                        "Finished fetching oplog during initial sync",
                        {"oplogFetcherFinishStatus": attempt.fetcher_error.status, "lastFetched": str(last["ts"])},
                    )
                    return
                self._reachable(attempt)
                if reply["entries"]:
                    with self.node.lock:
                        attempt.buffer.extend(reply["entries"])
        finally:
            client.close()

    def _apply_until_stop(self, attempt: _Attempt, stop: dict[str, Any]) -> None:
        """Writes the fetched entries to the oplog and applies those after beginApplying, up to stopTimestamp."""
        log = self.node.logger.log
        if stop["ts"] == attempt.begin_fetching:
            with self.node.lock:
                self.node.catalog.append_oplog(stop)
            log("I", "INITSYNC", 21186, "No need to apply operations", {"stopTimestamp": str(stop["ts"])})
            return
        log(
            "I",
            "INITSYNC",
            21195,
            "Writing to the oplog and applying operations until stopTimestamp before initial sync can complete",
            {
                "stopTimestamp": str(stop["ts"]),
                "beginFetchingTimestamp": str(attempt.begin_fetching),
                "beginApplyingTimestamp": str(attempt.begin_applying),
            },
        )
        position = 0
        while True:
            self._check(attempt)
            with self.node.lock:
                batch = attempt.buffer[position : position + _APPLY_BATCH]
                batch = [entry for entry in batch if entry["ts"] <= stop["ts"]]
                for entry in batch:
                    if attempt.begin_applying is not None and entry["ts"] <= attempt.begin_applying:
                        self.node.catalog.append_oplog(entry)  # fetched, not applied (before beginApplying)
                        self.node.record_session_of(entry)
                    else:
                        self.node.apply_replicated(entry)
                        attempt.applied_ops += 1
                position += len(batch)
                done = bool(batch) and batch[-1]["ts"] >= stop["ts"]
            if done:
                return
            if not batch:
                attempt.fetcher_stop.wait(0.05)  # the fetcher has not reached stopTimestamp yet


def set_initial_sync_flag(node: Any, value: bool) -> None:
    """local.replset.minvalid's doingInitialSync (ReplicationConsistencyMarkers::setInitialSyncFlag); lock held."""
    catalog = node.catalog
    if value:
        catalog.replace(LOCAL_DB, MINVALID_COLLECTION, {"_id": "minvalid", INITIAL_SYNC_FLAG: True})
    else:
        catalog.delete(LOCAL_DB, MINVALID_COLLECTION, "minvalid")
    node.wait_durable(catalog.generation)


def initial_sync_flag(node: Any) -> bool:
    documents = node.catalog.documents(LOCAL_DB, MINVALID_COLLECTION)
    return any(document.get(INITIAL_SYNC_FLAG) for document in documents)
