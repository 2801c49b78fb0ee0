"""Issue 12 point 3, in-process: the oplog is capped like WiredTiger's (truncate markers, never past the majority
commit point, the size fixed when the oplog is created), and reads in natural order see it as mongosh's
rs.printReplicationInfo() does. The replica-set behaviour (a member too stale to catch up) is in
test_server_initial_sync.py."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from bson.timestamp import Timestamp

from psmdb_emulator.server import query
from psmdb_emulator.server.catalog import LOCAL_DB, OPLOG, Catalog
from psmdb_emulator.storage import PlainDataStore

WALL = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def entry(n: int) -> dict[str, Any]:
    return {"op": "i", "ns": "app.c", "o": {"_id": n, "pad": "x" * 150}, "ts": Timestamp(1_700_000_000 + n, 1), "t": 1}


def capped_catalog(tmp_path: Path, maximum: int) -> tuple[Catalog, dict[str, Timestamp | None]]:
    catalog = Catalog(PlainDataStore(tmp_path))
    pin: dict[str, Timestamp | None] = {"ts": None}
    catalog.oplog_pin = lambda: pin["ts"]
    catalog.set_oplog_max_bytes(maximum)
    return catalog, pin


def test_i12_3_the_oplog_keeps_its_maximum_size_in_whole_markers_and_never_passes_the_commit_point(
    tmp_path: Path,
) -> None:
    maximum = 64 * 1024  # 10 truncate markers of 6.4 KiB (minOplogTruncateMarkers)
    catalog, pin = capped_catalog(tmp_path, maximum)
    for n in range(2000):
        catalog.append_oplog(entry(n))
    # Nothing is committed yet: the oplog grows past its maximum rather than lose the commit point.
    assert len(catalog.oplog) == 2000 and catalog.oplog_bytes > 4 * maximum
    pin["ts"] = entry(1000)["ts"]
    catalog.reclaim_oplog()
    # Whole markers before the commit point went; the marker holding it stays.
    first = catalog.oplog[0]["ts"]
    assert entry(900)["ts"] < first <= entry(1000)["ts"]
    pin["ts"] = entry(1999)["ts"]
    catalog.reclaim_oplog()
    assert catalog.oplog_bytes <= maximum + maximum // 10  # the complete markers fit, plus the open one
    assert catalog.oplog[-1] == entry(1999)  # the newest entry is never truncated
    assert catalog.oplog_bytes == sum(len(blob) for blob in catalog._oplog_encoded)


def test_i12_3_the_oplog_size_is_fixed_when_it_is_created_and_stored_with_it(tmp_path: Path) -> None:
    catalog, _ = capped_catalog(tmp_path, 1024 * 1024)
    assert not catalog.oplog_size_fixed  # no oplog yet: a later start may still size it
    catalog.append_oplog(entry(1))
    catalog.write_blobs(catalog.take_dirty())
    again = Catalog(PlainDataStore(tmp_path))
    again.load()
    assert again.oplog_size_fixed and again.oplog_max_bytes == 1024 * 1024
    assert again.collection_stats(LOCAL_DB, OPLOG) == {
        "count": 1,
        "size": catalog.oplog_bytes,
        "capped": True,
        "maxSize": 1024 * 1024,
        "nindexes": 0,
    }


def test_i12_3_natural_order_gives_the_oplog_window_ends() -> None:
    documents = [entry(n) for n in (1, 2, 3)]
    # find().sort({$natural: 1}).limit(1) and {$natural: -1}: first and last entries (mongosh getReplicationInfo)
    assert query.sort_documents(documents, {"$natural": 1})[0] == documents[0]
    assert query.sort_documents(documents, {"$natural": -1})[0] == documents[-1]
