"""In-memory databases and the oplog, persisted one database at a time through the DataStore.

Callers hold the node's lock; the catalog itself is not thread-safe. Each database is serialised as a
sequence of BSON documents (a header, then one document per stored document), so no single BSON
document has to hold a whole database and the 16 MB BSON limit does not cap a database.
"""

from __future__ import annotations

import bisect
import copy
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


def id_key(value: Any) -> bytes:
    """A hashable, type-exact key for an ``_id`` value (1 and 1.0 are distinct, as BSON types)."""
    return bson.encode({"": value}, codec_options=CODEC_OPTIONS)


@dataclass
class Collection:
    docs: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    indexes: list[dict[str, Any]] = field(default_factory=lambda: [{"v": 2, "key": {"_id": 1}, "name": "_id_"}])


class Catalog:
    def __init__(self, store: DataStore) -> None:
        self._store = store
        self.dbs: dict[str, dict[str, Collection]] = {}
        self.oplog: list[dict[str, Any]] = []
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
        collections = {c["name"]: Collection(options=c["options"], indexes=c["indexes"]) for c in documents[0]["c"]}
        if name == LOCAL_DB:
            collections.pop(OPLOG, None)
            self.oplog = []
        for entry in documents[1:]:
            if entry["c"] == OPLOG and name == LOCAL_DB:
                self.oplog.append(entry["d"])
            else:
                collections[entry["c"]].docs[id_key(entry["d"]["_id"])] = entry["d"]
        self.dbs[name] = collections
        self.mark_dirty(name)

    def serialise(self, name: str) -> bytes:
        collections = self.dbs.get(name, {})
        header = [{"name": n, "options": c.options, "indexes": c.indexes} for n, c in collections.items()]
        if name == LOCAL_DB:
            header.append({"name": OPLOG, "options": {"capped": True}, "indexes": []})
        parts = [bson.encode({"format": FORMAT, "c": header}, codec_options=CODEC_OPTIONS)]
        for coll_name, coll in collections.items():
            parts.extend(bson.encode({"c": coll_name, "d": d}, codec_options=CODEC_OPTIONS) for d in coll.docs.values())
        if name == LOCAL_DB:
            parts.extend(bson.encode({"c": OPLOG, "d": e}, codec_options=CODEC_OPTIONS) for e in self.oplog)
        return b"".join(parts)

    def take_dirty(self) -> dict[str, bytes | None]:
        """Snapshots every database changed since the last call (None: dropped), for the flusher to write."""
        blobs = {name: (self.serialise(name) if name in self.dbs else None) for name in sorted(self._dirty)}
        self._dirty.clear()
        return blobs

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
        return sum(len(id_key(d)) for coll in self.dbs.get(db, {}).values() for d in coll.docs.values())

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
        self.mark_dirty(db)

    def replace(self, db: str, name: str, doc: dict[str, Any]) -> None:
        self.insert(db, name, doc, upsert=True)

    def delete(self, db: str, name: str, doc_id: Any) -> bool:
        coll = self.collection(db, name)
        if coll is None or coll.docs.pop(id_key(doc_id), None) is None:
            return False
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
        self.oplog.append(entry)
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
        keep = [e for e in self.oplog if e["ts"] <= ts]
        dropped = self.oplog[len(keep) :]
        self.oplog = keep
        self.mark_dirty(LOCAL_DB)
        return dropped

    def apply_oplog_entry(self, entry: dict[str, Any]) -> None:
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
        self.append_oplog(entry)
