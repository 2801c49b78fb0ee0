#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Background writer: retryable w:majority inserts into every replica set, every acknowledged _id recorded.

    fleet_writer.py start --fleet fleet.json --dir DIR [--label main] [--sets cfg,rs1] [--interval 0.1]
    fleet_writer.py stop --dir DIR [--label main]
    fleet_writer.py run ...           (the foreground loop that `start` detaches; fleet_lib.BackgroundTool)

One thread per replica set inserts ``{_id, replset, t}`` documents one after another into
``<db>.kmipops_rotation_writes`` through a replica-set connection (discovery, failover,
retryable writes: pymongo retries a write once on a new primary, and the server deduplicates
it), ``w: "majority"``. Each insert the server acknowledged is appended to
``DIR/writer-<label>-acks.jsonl`` (``replset, _id, t0`` sent, ``t`` acknowledged); each failure
to ``DIR/writer-<label>-errors.jsonl`` with its time, class, code and message. A failed insert
may still have been applied: only acknowledged ones are promised, and fleet_check.py looks for
exactly those on every member.

``start`` returns once every set has acknowledged a first write (or fails with the writer's
log); ``stop`` sends SIGTERM by PID file, waits for the in-flight inserts to finish and prints
a JSON summary per set. The process also ends by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fleet_lib
from pymongo import WriteConcern
from pymongo.errors import PyMongoError


class Recorder:
    """Appends records to the acks/errors files; one lock, each line flushed at once."""

    def __init__(self, acks: Path, errors: Path) -> None:
        self._lock = threading.Lock()
        self._acks = acks.open("a", encoding="utf-8")
        self._errors = errors.open("a", encoding="utf-8")

    def _write(self, handle: Any, record: dict[str, Any]) -> None:
        with self._lock:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    def ack(self, record: dict[str, Any]) -> None:
        self._write(self._acks, record)

    def error(self, record: dict[str, Any]) -> None:
        self._write(self._errors, record)

    def close(self) -> None:
        self._acks.close()
        self._errors.close()


def write_loop(
    fleet: fleet_lib.Fleet,
    replset: str,
    run_id: str,
    interval: float,
    stop: threading.Event,
    recorder: Recorder,
) -> None:
    client = fleet_lib.set_client(
        fleet,
        replset,
        retryWrites=True,
        serverSelectionTimeoutMS=30000,
        connectTimeoutMS=3000,
        socketTimeoutMS=60000,
    )
    collection = client[fleet.database(replset)].get_collection(
        fleet_lib.WRITES_COLLECTION, write_concern=WriteConcern(w="majority", wtimeout=30000)
    )
    sequence = 0
    try:
        while not stop.is_set():
            sequence += 1
            doc_id = f"{run_id}-{replset}-{sequence:07d}"
            sent = time.time()
            try:
                collection.insert_one({"_id": doc_id, "replset": replset, "t": sent})
            except PyMongoError as exc:
                recorder.error(
                    {
                        "replset": replset,
                        "_id": doc_id,
                        "t0": sent,
                        "t": time.time(),
                        "error": type(exc).__name__,
                        "code": getattr(exc, "code", None),
                        "message": str(exc)[:500],
                    }
                )
            else:
                recorder.ack({"replset": replset, "_id": doc_id, "t0": sent, "t": time.time()})
            stop.wait(max(0.0, interval - (time.time() - sent)))
    finally:
        client.close()


def run(args: argparse.Namespace) -> int:
    fleet = fleet_lib.Fleet.load(args.fleet)
    fleet.install_resolver()
    stop = fleet_lib.stop_event()
    deadline = threading.Timer(args.max_seconds, stop.set)
    deadline.daemon = True
    deadline.start()
    recorder = Recorder(TOOL.path(args, ACKS), TOOL.path(args, ERRORS))
    run_id = uuid.uuid4().hex[:8]
    sets = list(fleet.sets(args.sets))
    print(f"writer {run_id}: sets {sets}, one insert per {args.interval} s per set", flush=True)
    threads = [
        threading.Thread(
            target=write_loop, args=(fleet, name, run_id, args.interval, stop, recorder), name=name, daemon=True
        )
        for name in sets
    ]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:  # an in-flight insert may still wait for a primary or the majority
        thread.join(timeout=70)
    recorder.close()
    print(f"writer {run_id}: stopped", flush=True)
    return 0


def acknowledged_everywhere(args: argparse.Namespace) -> bool:
    """Ready: every set has acknowledged a first write."""
    sets = set(fleet_lib.Fleet.load(args.fleet).sets(args.sets))
    return sets <= {r["replset"] for r in fleet_lib.read_jsonl(TOOL.path(args, ACKS))}


def summary(args: argparse.Namespace) -> dict[str, Any]:
    acks = fleet_lib.read_jsonl(TOOL.path(args, ACKS))
    errors = fleet_lib.read_jsonl(TOOL.path(args, ERRORS))
    result: dict[str, Any] = {}
    for name in sorted({r["replset"] for r in acks + errors}):
        times = sorted(r["t"] for r in acks if r["replset"] == name)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        result[name] = {
            "acknowledged": len(times),
            "errors": sum(1 for r in errors if r["replset"] == name),
            "longest_gap_s": round(max(gaps), 3) if gaps else None,
        }
    return {"sets": result}


ACKS, ERRORS = "-acks.jsonl", "-errors.jsonl"
# an in-flight insert may wait for a primary (30 s) and then for the majority (30 s)
TOOL = fleet_lib.BackgroundTool(
    __file__, "writer", (ACKS, ERRORS), 0.1, run, acknowledged_everywhere, summary, stop_timeout=90.0
)

if __name__ == "__main__":
    sys.exit(TOOL.main(__doc__.splitlines()[0]))
