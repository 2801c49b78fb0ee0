"""Process-wide server state: data, oplog, sessions, replica set, users. One lock guards all of it."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from bson.binary import Binary
from bson.int64 import Int64
from bson.timestamp import Timestamp

from ..contracts import DataStore, ShutdownController
from ..logv2 import Logger
from .catalog import LOCAL_DB, Catalog, id_key
from .errors import CommandError
from .peer import INTERNAL_DB, INTERNAL_USER, PeerClient, split_host
from .replset import EPOCH, PRIMARY, ReplicaSet, optime_of, utcnow
from .scram import ScramCredentials, derive_credentials
from .settings import ServerSettings, read_key_file
from .writeconcern import unsatisfiable_error, write_concern_error

USERS_DB = "admin"
USERS_COLLECTION = "system.users"


@dataclass
class SessionRecord:
    """Retryable writes: which statements of the latest txnNumber ran, and their results (config.transactions)."""

    txn_number: int
    statements: dict[int, dict[str, Any]] = field(default_factory=dict)


def _result_of(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["op"] == "u":
        return {"n": 1, "nModified": 1}
    return {"n": 1}


class Node:
    def __init__(
        self, settings: ServerSettings, store: DataStore, logger: Logger, shutdown: ShutdownController
    ) -> None:
        self.settings = settings
        self.store = store
        self.logger = logger
        self.shutdown = shutdown
        self.lock = threading.RLock()
        # Notified on every change a waiter may care about: new oplog entries, commit point, state, topology.
        self.changed = threading.Condition(self.lock)
        self.catalog = Catalog(store)
        self.started = time.monotonic()
        self.process_id = ObjectId()
        self.topology_counter = 0
        self.connection_count = 0
        self.cursors: dict[int, Any] = {}
        self.sessions: dict[bytes, SessionRecord] = {}
        self._last_ts = Timestamp(0, 0)
        self.internal_key = read_key_file(settings.key_file) if settings.key_file else None
        self.internal_credentials = derive_credentials(self.internal_key) if self.internal_key else None
        self._peer_tls = settings.tls.client_context() if settings.tls.mode in ("preferTLS", "requireTLS") else None
        self.repl = ReplicaSet(self, settings.repl_set_name) if settings.repl_set_name else None
        self._self_names = self._resolve_self_names()
        self.durable_generation = 0
        # The newest oplog entry known to be on disk: heartbeats report it (durableOpTime/durableWallTime).
        self.durable_entry: dict[str, Any] | None = None
        self._flusher: threading.Thread | None = None
        self._flusher_stop = threading.Event()
        # Shutdown (mongod's shutdownTask): the shutdown command sets the quiesce time it has left; a signal
        # or the key-state monitor leave it None and shutdownTimeoutMillisForSignaledShutdown applies.
        self.command_quiesce_seconds: float | None = None
        self.quiesce_deadline: float | None = None  # set while in quiesce mode
        self.interrupted_at_shutdown = False  # after quiesce: operations still waiting are killed
        self._cluster_time_key = (
            hashlib.sha256(b"psmdb-emulator cluster time key\0" + self.internal_key.encode()).digest()[:20]
            if self.internal_key
            else None
        )

    # -- start-up ------------------------------------------------------------------------------------------------
    def load(self) -> None:
        with self.lock:
            self.catalog.load()
            if self.repl is not None:
                # replication.oplogSizeMB only sizes an oplog that does not exist yet (mongod docs).
                if self.settings.oplog_override_bytes:
                    self.catalog.set_oplog_max_bytes(self.settings.oplog_override_bytes)
                elif not self.catalog.oplog_size_fixed:
                    self.catalog.set_oplog_max_bytes(self.settings.configured_oplog_bytes())
                self.catalog.oplog_pin = self._oplog_pin
            if self.catalog.oplog:
                self._last_ts = self.catalog.oplog[-1]["ts"]
                self.durable_entry = self.catalog.oplog[-1]
            self.rebuild_sessions()

    def _oplog_pin(self) -> Timestamp | None:
        """The oplog may not be truncated past the majority commit point (mongod docs, "Oplog Size")."""
        commit_point = self.repl.commit_point if self.repl is not None else None
        return commit_point["ts"] if commit_point and commit_point["t"] != -1 else None

    # -- durability (a group-commit "journal" thread) --------------------------------------------------------------
    def start_flusher(self) -> None:
        self._flusher = threading.Thread(target=self._flush_loop, name="JournalFlusher", daemon=True)
        self._flusher.start()

    def stop_flusher(self) -> None:
        """Stops the flusher and writes whatever is still dirty (clean shutdown)."""
        self._flusher_stop.set()
        with self.lock:
            self.changed.notify_all()
        if self._flusher is not None:
            self._flusher.join(timeout=60)
        self._flush_once()

    def _flush_loop(self) -> None:
        while not self._flusher_stop.is_set():
            with self.lock:
                if not self.catalog.has_dirty:
                    self.changed.wait(0.1)
            self._flush_once()

    def _flush_once(self) -> None:
        # Snapshot under the lock (fast), write without it (fsync is slow), so heartbeats and reads never wait on disk.
        with self.lock:
            if not self.catalog.has_dirty:
                return
            generation = self.catalog.generation
            tail = self.catalog.oplog[-1] if self.catalog.oplog else None
            blobs = self.catalog.take_dirty()
        self.catalog.write_blobs(blobs)
        with self.lock:
            self.durable_generation = max(self.durable_generation, generation)
            if tail is not None and (self.durable_entry is None or tail["ts"] >= self.durable_entry["ts"]):
                self.durable_entry = tail
                if self.repl is not None:
                    self.repl.durable_advanced()
            self.changed.notify_all()

    def wait_durable(self, generation: int) -> None:
        """Waits (releasing the lock if held) until changes up to ``generation`` are on disk."""
        with self.lock:
            while self.durable_generation < generation and not self._flusher_stop.is_set():
                if self._flusher is None:
                    break  # not serving yet (start-up): the final flush or the first flusher pass writes it
                self.changed.wait(0.5)

    def _resolve_self_names(self) -> set[str]:
        names = set(self.settings.bind_ips)
        if "0.0.0.0" in names or "::" in names:
            names |= {"localhost", "127.0.0.1", socket.gethostname()}
        return names

    def is_self_host(self, host: str) -> bool:
        name, port = split_host(host)
        if port != self.settings.port:
            return False
        if name in self._self_names:
            return True
        try:
            return socket.gethostbyname(name) in self._self_names
        except OSError:
            return False

    def default_host(self) -> str:
        address = next((ip for ip in self.settings.bind_ips if ip not in ("0.0.0.0", "::")), socket.gethostname())
        return f"{address}:{self.settings.port}"

    def new_peer_client(self, host: str) -> PeerClient:
        return PeerClient(host, self._peer_tls, self.internal_key)

    # -- topology / time -----------------------------------------------------------------------------------------
    def bump_topology(self) -> None:
        self.topology_counter += 1
        self.changed.notify_all()

    def topology_version(self) -> dict[str, Any]:
        return {"processId": self.process_id, "counter": self.topology_counter}

    def next_timestamp(self) -> Timestamp:
        now = int(time.time())
        if now > self._last_ts.time:
            self._last_ts = Timestamp(now, 1)
        else:
            self._last_ts = Timestamp(self._last_ts.time, self._last_ts.inc + 1)
        return self._last_ts

    def last_applied_wall(self) -> datetime.datetime:
        """Wall time of the newest oplog entry (mongod's lastAppliedWallTime), never the current time."""
        return self.catalog.oplog[-1].get("wall", EPOCH) if self.catalog.oplog else EPOCH

    def durable(self) -> tuple[dict[str, Any], datetime.datetime]:
        """(durableOpTime, durableWallTime): the newest oplog entry on disk."""
        entry = self.durable_entry
        return optime_of(entry), (entry.get("wall", EPOCH) if entry else EPOCH)

    # -- shutdown ------------------------------------------------------------------------------------------------
    @property
    def in_quiesce(self) -> bool:
        return self.quiesce_deadline is not None

    def remaining_quiesce_millis(self) -> int:
        return max(0, int(((self.quiesce_deadline or 0.0) - time.monotonic()) * 1000))

    # -- $clusterTime ----------------------------------------------------------------------------------------------
    def cluster_time(self) -> dict[str, Any]:
        """The gossiped cluster time: signed with a key every member derives from the keyFile (mongod keeps
        its keys in admin.system.keys); with no keyFile mongod sends a zero signature, keyId 0."""
        cluster_time = self._last_ts
        if self._cluster_time_key is None:
            return {"clusterTime": cluster_time, "signature": {"hash": Binary(bytes(20)), "keyId": Int64(0)}}
        return {
            "clusterTime": cluster_time,
            "signature": {"hash": Binary(self._sign(cluster_time)), "keyId": Int64(self.cluster_time_key_id)},
        }

    @property
    def cluster_time_key_id(self) -> int:
        assert self._cluster_time_key is not None
        return int.from_bytes(hashlib.sha256(self._cluster_time_key).digest()[:7], "big")

    def _sign(self, cluster_time: Timestamp) -> bytes:
        assert self._cluster_time_key is not None
        message = cluster_time.time.to_bytes(4, "big") + cluster_time.inc.to_bytes(4, "big")
        return hmac.new(self._cluster_time_key, message, hashlib.sha1).digest()

    def check_cluster_time(self, gossiped: Any) -> None:
        """Validates a client's $clusterTime signature (mongod does so for clients without the
        advanceClusterTime privilege; every authenticated emulator user is treated as root)."""
        if self._cluster_time_key is None or not isinstance(gossiped, dict):
            return
        signature = gossiped.get("signature") or {}
        cluster_time = gossiped.get("clusterTime")
        if not isinstance(cluster_time, Timestamp):
            raise CommandError(14, "$clusterTime.clusterTime must be a Timestamp")
        if int(signature.get("keyId", -1)) != self.cluster_time_key_id:
            raise CommandError(211, f"Cache Reader No keys found for HMAC that is valid for time: {cluster_time}")
        if not hmac.compare_digest(bytes(signature.get("hash", b"")), self._sign(cluster_time)):
            raise CommandError(204, "Cluster time signature mismatch")
        if cluster_time > self._last_ts:
            self._last_ts = cluster_time  # a valid later cluster time advances this member's clock

    def last_optime(self) -> dict[str, Any] | None:
        return self.repl.applied() if self.repl else None

    # -- writes --------------------------------------------------------------------------------------------------
    def check_writable(self, db: str) -> None:
        if self.repl is None or db == LOCAL_DB:
            return
        if self.repl.state != PRIMARY or self.repl.stepping_down:
            raise CommandError(10107, "not primary")

    def log_op(self, entry: dict[str, Any], term: int | None = None) -> dict[str, Any] | None:
        """Appends an oplog entry for a local write (replica set members only); returns its optime."""
        if self.repl is None:
            return None
        if entry.get("ns", "").startswith(f"{LOCAL_DB}."):
            return None
        full = {
            **entry,
            "ts": self.next_timestamp(),
            "t": self.repl.term if term is None else term,
            "v": 2,
            "wall": utcnow(),
        }
        self.catalog.append_oplog(full)
        self._record_session(full)
        self.changed.notify_all()
        return {"ts": full["ts"], "t": full["t"]}

    def apply_replicated(self, entry: dict[str, Any]) -> None:
        self.catalog.apply_oplog_entry(entry)
        self._record_session(entry)
        if entry["ts"] > self._last_ts:
            self._last_ts = entry["ts"]

    def record_session_of(self, entry: dict[str, Any]) -> None:
        """Retryable-write bookkeeping for an oplog entry written without being applied (initial sync)."""
        self._record_session(entry)

    def _record_session(self, entry: dict[str, Any]) -> None:
        if "lsid" in entry and "txnNumber" in entry and "stmtId" in entry:
            self.record_statement(entry["lsid"], int(entry["txnNumber"]), int(entry["stmtId"]), _result_of(entry))

    def record_statement(self, lsid: dict[str, Any], txn_number: int, stmt_id: int, result: dict[str, Any]) -> None:
        key = id_key(lsid.get("id"))
        record = self.sessions.get(key)
        if record is None or record.txn_number < txn_number:
            record = self.sessions[key] = SessionRecord(txn_number)
        if record.txn_number == txn_number:
            record.statements[stmt_id] = result

    def executed_statement(self, lsid: dict[str, Any], txn_number: int, stmt_id: int) -> dict[str, Any] | None:
        """The result of an already executed retryable statement, or None; errors on an old txnNumber."""
        record = self.sessions.get(id_key(lsid.get("id")))
        if record is None:
            return None
        if txn_number < record.txn_number:
            raise CommandError(
                225,
                f"Retryable write with txnNumber {txn_number} is prohibited on session because a newer "
                f"retryable write with txnNumber {record.txn_number} has already started on this session.",
            )
        return record.statements.get(stmt_id) if txn_number == record.txn_number else None

    def rebuild_sessions(self) -> None:
        self.sessions.clear()
        for entry in self.catalog.oplog:
            self._record_session(entry)

    def wait_for_write_concern(
        self, optime: dict[str, Any] | None, write_concern: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Blocks until the write concern is satisfied; returns a writeConcernError document, or None.

        Like mongod's awaitReplication, an unknown mode (79) or a w no set of members can satisfy (100)
        fails at once, without waiting.
        """
        if self.repl is None:
            return None
        w = write_concern.get("w", 1)
        with self.lock:
            error = unsatisfiable_error(self.repl, write_concern)
        if error is not None or optime is None:
            return error  # even a command that wrote nothing reports an impossible write concern
        if isinstance(w, int | float) and w <= 1:
            return None
        wtimeout = float(write_concern.get("wtimeout", 0) or 0) / 1000
        deadline = time.monotonic() + wtimeout if wtimeout > 0 else None
        with self.lock:
            while True:
                if w == "majority":
                    status = self.repl.majority_write_status(optime)
                else:
                    status = self.repl.write_status(optime, w)
                if status == "done":
                    return None
                if status == "stepped_down":
                    return write_concern_error(189, "Primary stepped down while waiting for replication", write_concern)
                if self.interrupted_at_shutdown:
                    return write_concern_error(11600, "interrupted at shutdown", write_concern)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    error = write_concern_error(64, "waiting for replication timed out", write_concern)
                    error["errInfo"]["wtimeout"] = True
                    return error
                self.changed.wait(0.5 if remaining is None else min(remaining, 0.5))

    # -- users -----------------------------------------------------------------------------------------------------
    def user_document(self, db: str, user: str) -> dict[str, Any] | None:
        coll = self.catalog.collection(USERS_DB, USERS_COLLECTION)
        return coll.docs.get(id_key(f"{db}.{user}")) if coll else None

    def credentials(self, db: str, user: str) -> ScramCredentials | None:
        if db == INTERNAL_DB and user == INTERNAL_USER:
            return self.internal_credentials
        doc = self.user_document(db, user)
        if doc is None or "SCRAM-SHA-256" not in doc.get("credentials", {}):
            return None
        return ScramCredentials.from_document(doc["credentials"]["SCRAM-SHA-256"])

    def has_users(self) -> bool:
        coll = self.catalog.collection(USERS_DB, USERS_COLLECTION)
        return bool(coll and coll.docs)
