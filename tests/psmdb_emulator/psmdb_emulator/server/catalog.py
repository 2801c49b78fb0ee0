"""In-memory databases and the oplog, persisted one database at a time through the DataStore.

Callers hold the node's lock; the catalog itself is not thread-safe. Each database is serialised as a
sequence of BSON documents (a header, then one record ``{c: <collection>, d: <document>}`` per stored
document), so no single BSON document has to hold a whole database and the 16 MB BSON limit does not cap
a database. Every document's BSON is kept next to it, so a flush only concatenates bytes.

The oplog is capped like WiredTiger's (README, "Oplog size"): its maximum size in bytes is fixed when it is
created (``replication.oplogSizeMB`` or mongod's default) and stored with it; entries are grouped into
truncate markers and the oldest marker is dropped while the complete markers hold more than the maximum,
never past the pinned point (the majority commit point).
"""

from __future__ import annotations

import bisect
import copy
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.timestamp import Timestamp

from ..contracts import DataStore
from .errors import CommandError
from .wire import CODEC_OPTIONS

FORMAT = "psmdb-emulator-db/1"
LOCAL_DB = "local"
OPLOG = "oplog.rs"
_OPLOG_NS = f"{LOCAL_DB}.{OPLOG}"
MIB = 1024 * 1024
# WiredTiger oplog truncate markers (wiredtiger_record_store.cpp, 7.0): markers are at least
# BSONObjMaxInternalSize, between minOplogTruncateMarkers (10) and maxOplogTruncateMarkersDuringStartup (100).
_BSON_OBJ_MAX_INTERNAL_SIZE = 16 * MIB + 16 * 1024
_MIN_TRUNCATE_MARKERS = 10
_MAX_TRUNCATE_MARKERS = 100
_INT32 = struct.Struct("<i")


def id_key(value: Any) -> bytes:
    """A hashable, type-exact key for an ``_id`` value (1 and 1.0 are distinct, as BSON types)."""
    return bson.encode({"": value}, codec_options=CODEC_OPTIONS)


def encode(document: dict[str, Any]) -> bytes:
    return bson.encode(document, codec_options=CODEC_OPTIONS)


def _record(collection: bytes, document: bytes) -> bytes:
    """BSON of ``{c: <collection>, d: <document>}`` from an already encoded document."""
    body = b"\x02c\x00" + _INT32.pack(len(collection) + 1) + collection + b"\x00\x03d\x00" + document + b"\x00"
    return _INT32.pack(len(body) + 4) + body


@dataclass
class Collection:
    docs: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    indexes: list[dict[str, Any]] = field(default_factory=lambda: [{"v": 2, "key": {"_id": 1}, "name": "_id_"}])
    encoded: dict[bytes, bytes] = field(default_factory=dict)  # _id key -> the document's BSON

    @property
    def data_size(self) -> int:
        """collStats ``size``: the documents' BSON bytes."""
        return sum(len(blob) for blob in self.encoded.values())


@dataclass
class _TruncateMarker:
    last_ts: Timestamp
    records: int
    bytes: int


class Catalog:
    def __init__(self, store: DataStore) -> None:
        self._store = store
        self.dbs: dict[str, dict[str, Collection]] = {}
        self.oplog: list[dict[str, Any]] = []
        self._oplog_encoded: list[bytes] = []
        self.oplog_bytes = 0
        # Fixed when the oplog is created (its first entry) and stored with it in local's header.
        self.oplog_max_bytes: int | None = None
        self._oplog_size_fixed = False
        # The newest timestamp the cap may truncate up to (exclusive): the majority commit point.
        self.oplog_pin: Callable[[], Timestamp | None] = lambda: None
        self._markers: deque[_TruncateMarker] = deque()
        self._partial_records = 0
        self._partial_bytes = 0
        self._dirty: set[str] = set()
        self.generation = 0  # bumped by every change; the flusher reports which generation is durable

    # -- persistence ---------------------------------------------------------------------------------------------
    def load(self) -> None:
        for name in self._store.list_dbs():
            data = self._store.read_db(name)
            if data is not None:
                self.deserialise(name, data)

    def deserialise(self, name: str, data: bytes) -> None:
        """Replaces database ``name`` with the content of a blob made by ``serialise``."""
        documents = bson.decode_all(data, CODEC_OPTIONS)
        if not documents or documents[0].get("format") != FORMAT:
            raise ValueError(f"database {name!r} was not written by this emulator")
        header = documents[0]["c"]
        collections = {c["name"]: Collection(options=c["options"], indexes=c["indexes"]) for c in header}
        oplog_entries: list[dict[str, Any]] = []
        if name == LOCAL_DB:
            stored = collections.pop(OPLOG, None)
            if stored is not None and stored.options.get("size"):
                self.oplog_max_bytes = int(stored.options["size"])
                self._oplog_size_fixed = True
        for entry in documents[1:]:
            if entry["c"] == OPLOG and name == LOCAL_DB:
                oplog_entries.append(entry["d"])
            else:
                coll = collections[entry["c"]]
                key = id_key(entry["d"]["_id"])
                coll.docs[key] = entry["d"]
                coll.encoded[key] = encode(entry["d"])
        self.dbs[name] = collections
        if name == LOCAL_DB:
            self._reset_oplog(oplog_entries)
        self.mark_dirty(name)

    def serialise(self, name: str) -> bytes:
        collections = self.dbs.get(name, {})
        header = [{"name": n, "options": c.options, "indexes": c.indexes} for n, c in collections.items()]
        if name == LOCAL_DB:
            options: dict[str, Any] = {"capped": True}
            if self.oplog_max_bytes and self._oplog_size_fixed:
                options["size"] = self.oplog_max_bytes
            header.append({"name": OPLOG, "options": options, "indexes": []})
        parts = [encode({"format": FORMAT, "c": header})]
        for coll_name, coll in collections.items():
            prefix = coll_name.encode()
            parts.extend(_record(prefix, blob) for blob in coll.encoded.values())
        if name == LOCAL_DB:
            prefix = OPLOG.encode()
            parts.extend(_record(prefix, blob) for blob in self._oplog_encoded)
        return b"".join(parts)

    def take_dirty(self) -> dict[str, bytes | None]:
        """Snapshots every database changed since the last call (None: dropped), for the flusher to write."""
        blobs = {name: (self.serialise(name) if self._exists(name) else None) for name in sorted(self._dirty)}
        self._dirty.clear()
        return blobs

    def _exists(self, name: str) -> bool:
        return name in self.dbs or (name == LOCAL_DB and self._oplog_size_fixed)

    def write_blobs(self, blobs: dict[str, bytes | None]) -> None:
        """Writes snapshots from ``take_dirty``; slow (fsync), so callers do it without holding the node lock."""
        for name, blob in blobs.items():
            if blob is None:
                self._store.drop_db(name)
            else:
                self._store.write_db(name, blob)

    def mark_dirty(self, db: str) -> None:
        self._dirty.add(db)
        self.generation += 1

    @property
    def has_dirty(self) -> bool:
        return bool(self._dirty)

    # -- reads ---------------------------------------------------------------------------------------------------
    def collection(self, db: str, name: str) -> Collection | None:
        return self.dbs.get(db, {}).get(name)

    def documents(self, db: str, name: str) -> list[dict[str, Any]]:
        if db == LOCAL_DB and name == OPLOG:
            return self.oplog
        coll = self.collection(db, name)
        return list(coll.docs.values()) if coll else []

    def database_names(self) -> list[str]:
        return sorted(n for n, colls in self.dbs.items() if colls or n == LOCAL_DB)

    def data_size(self, db: str) -> int:
        size = sum(coll.data_size for coll in self.dbs.get(db, {}).values())
        return size + (self.oplog_bytes if db == LOCAL_DB else 0)

    def collection_stats(self, db: str, name: str) -> dict[str, Any] | None:
        """The sizes collStats reports (``size`` is the documents' BSON bytes), or None for a missing collection."""
        if db == LOCAL_DB and name == OPLOG:
            if self.oplog_max_bytes is None:
                return None
            count, size = len(self.oplog), self.oplog_bytes
            return {"count": count, "size": size, "capped": True, "maxSize": self.oplog_max_bytes, "nindexes": 0}
        coll = self.collection(db, name)
        if coll is None:
            return None
        count, size = len(coll.docs), coll.data_size
        stats: dict[str, Any] = {"count": count, "size": size, "capped": bool(coll.options.get("capped"))}
        if stats["capped"] and coll.options.get("size"):
            stats["maxSize"] = int(coll.options["size"])
        stats["nindexes"] = len(coll.indexes)
        return stats

    def documents_after(self, db: str, name: str, after: bytes | None, limit: int, max_bytes: int) -> list[bytes]:
        """The BSON of up to ``limit`` documents (and about ``max_bytes``) whose ``_id`` key sorts after ``after``:
        a scan that resumes where the previous batch ended, whatever changed in between."""
        coll = self.collection(db, name)
        if coll is None:
            return []
        keys = sorted(coll.encoded)
        start = 0 if after is None else bisect.bisect_right(keys, after)
        batch: list[bytes] = []
        total = 0
        for key in keys[start:]:
            blob = coll.encoded[key]
            if batch and (len(batch) >= limit or total + len(blob) > max_bytes):
                break
            batch.append(blob)
            total += len(blob)
        return batch

    # -- writes (the same calls apply local writes and replicated oplog entries) ---------------------------------
    def ensure_collection(self, db: str, name: str, options: dict[str, Any] | None = None) -> tuple[Collection, bool]:
        collections = self.dbs.setdefault(db, {})
        if name in collections:
            return collections[name], False
        collections[name] = Collection(options=dict(options or {}))
        self.mark_dirty(db)
        return collections[name], True

    def insert(self, db: str, name: str, doc: dict[str, Any], upsert: bool = False) -> None:
        coll, _ = self.ensure_collection(db, name)
        key = id_key(doc["_id"])
        if key in coll.docs and not upsert:
            raise CommandError(
                11000,
                f"E11000 duplicate key error collection: {db}.{name} index: _id_ dup key: {{ _id: {doc['_id']!r} }}",
                keyPattern={"_id": 1},
                keyValue={"_id": doc["_id"]},
            )
        coll.docs[key] = copy.deepcopy(doc)
        coll.encoded[key] = encode(doc)
        self.mark_dirty(db)

    def replace(self, db: str, name: str, doc: dict[str, Any]) -> None:
        self.insert(db, name, doc, upsert=True)

    def delete(self, db: str, name: str, doc_id: Any) -> bool:
        coll = self.collection(db, name)
        key = id_key(doc_id)
        if coll is None or coll.docs.pop(key, None) is None:
            return False
        coll.encoded.pop(key, None)
        self.mark_dirty(db)
        return True

    def drop_collection(self, db: str, name: str) -> bool:
        if self.dbs.get(db, {}).pop(name, None) is None:
            return False
        self.mark_dirty(db)
        return True

    def drop_database(self, db: str) -> None:
        if db in self.dbs:
            del self.dbs[db]
            self.mark_dirty(db)

    # -- oplog ---------------------------------------------------------------------------------------------------
    def append_oplog(self, entry: dict[str, Any]) -> None:
        self._oplog_size_fixed = True
        blob = encode(entry)
        self.oplog.append(entry)
        self._oplog_encoded.append(blob)
        self.oplog_bytes += len(blob)
        self._count_for_markers(entry, len(blob))
        self.mark_dirty(LOCAL_DB)
        self.reclaim_oplog()

    @property
    def oplog_size_fixed(self) -> bool:
        """Whether the oplog exists with a maximum size of its own (later options do not change it)."""
        return self._oplog_size_fixed

    def set_oplog_max_bytes(self, maximum: int) -> None:
        """Sets the oplog's maximum size (mongod's, before the oplog exists; or an emulator-only override)
        and recomputes the truncate markers for it."""
        if maximum != self.oplog_max_bytes:
            self.oplog_max_bytes = maximum
            self._reset_oplog(self.oplog)
            if self._oplog_size_fixed:
                self.mark_dirty(LOCAL_DB)

    def _min_bytes_per_marker(self) -> int:
        maximum = self.oplog_max_bytes or 0
        if maximum <= 0:
            return 0
        wanted = maximum // _BSON_OBJ_MAX_INTERNAL_SIZE
        keep = min(_MAX_TRUNCATE_MARKERS, max(_MIN_TRUNCATE_MARKERS, wanted))
        return max(1, maximum // keep)

    def _count_for_markers(self, entry: dict[str, Any], size: int) -> None:
        self._partial_records += 1
        self._partial_bytes += size
        minimum = self._min_bytes_per_marker()
        if minimum and self._partial_bytes >= minimum:
            self._markers.append(_TruncateMarker(entry["ts"], self._partial_records, self._partial_bytes))
            self._partial_records = self._partial_bytes = 0

    def _reset_oplog(self, entries: list[dict[str, Any]]) -> None:
        """Replaces the oplog and recomputes its truncate markers (mongod scans the oplog at start-up)."""
        self.oplog = []
        self._oplog_encoded = []
        self.oplog_bytes = 0
        self._markers.clear()
        self._partial_records = self._partial_bytes = 0
        for entry in entries:
            blob = encode(entry)
            self.oplog.append(entry)
            self._oplog_encoded.append(blob)
            self.oplog_bytes += len(blob)
            self._count_for_markers(entry, len(blob))

    def reclaim_oplog(self) -> int:
        """Drops the oldest truncate markers while the complete ones exceed the maximum size and lie wholly
        before the pinned point (OplogTruncateMarkers::_hasExcessMarkers); returns how many entries went."""
        removed = 0
        if not self.oplog_max_bytes:
            return removed
        pin = self.oplog_pin()
        while self._markers and sum(m.bytes for m in self._markers) > self.oplog_max_bytes:
            oldest = self._markers[0]
            if pin is None or oldest.last_ts >= pin:
                break
            count = bisect.bisect_right(self.oplog, oldest.last_ts, key=lambda entry: entry["ts"])
            self.oplog_bytes -= sum(len(blob) for blob in self._oplog_encoded[:count])
            del self.oplog[:count]
            del self._oplog_encoded[:count]
            self._markers.popleft()
            removed += count
        if removed:
            self.mark_dirty(LOCAL_DB)
        return removed

    def truncate_oplog(self) -> None:
        """Empties the oplog (initial sync truncates it before cloning); its maximum size is kept."""
        self._reset_oplog([])
        self.mark_dirty(LOCAL_DB)

    def _index_after(self, ts: Timestamp) -> int:
        # The oplog is in ts order.
        return bisect.bisect_right(self.oplog, ts, key=lambda entry: entry["ts"])

    def oplog_after(self, ts: Timestamp | None, limit: int) -> list[dict[str, Any]]:
        start = 0 if ts is None else self._index_after(ts)
        return self.oplog[start : start + limit]

    def oplog_entry(self, ts: Timestamp) -> dict[str, Any] | None:
        index = self._index_after(ts) - 1
        return self.oplog[index] if index >= 0 and self.oplog[index]["ts"] == ts else None

    def has_oplog_entry(self, ts: Timestamp, term: int) -> bool:
        entry = self.oplog_entry(ts)
        return entry is not None and entry["t"] == term

    def truncate_oplog_after(self, ts: Timestamp) -> list[dict[str, Any]]:
        """Drops entries newer than ts (rollback); returns them, oldest first."""
        keep = self._index_after(ts)
        dropped = self.oplog[keep:]
        self._reset_oplog(self.oplog[:keep])
        self.mark_dirty(LOCAL_DB)
        return dropped

    def apply_oplog_entry(self, entry: dict[str, Any], *, append: bool = True) -> None:
        """Applies a replicated operation idempotently, so initial sync may replay entries the clone already has."""
        op = entry["op"]
        db, _, coll = entry.get("ns", "").partition(".")
        if op == "i" or op == "u":
            self.replace(db, coll, entry["o"])
        elif op == "d":
            self.delete(db, coll, entry["o"]["_id"])
        elif op == "c":
            command = entry["o"]
            if "create" in command:
                self.ensure_collection(db, command["create"], {k: v for k, v in command.items() if k != "create"})
            elif "drop" in command:
                self.drop_collection(db, command["drop"])
            elif "dropDatabase" in command:
                self.drop_database(db)
            elif "createIndexes" in command:
                collection, _ = self.ensure_collection(db, command["createIndexes"])
                spec = {k: v for k, v in command.items() if k != "createIndexes"}
                if not any(index["name"] == spec.get("name") for index in collection.indexes):
                    collection.indexes.append({"v": 2, **spec})
                    self.mark_dirty(db)
        if append:
            self.append_oplog(entry)
