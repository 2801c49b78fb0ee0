#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Down-sampler: asks every member "are you up, and as what?" every ~250 ms and writes a timeline.

    fleet_sampler.py start --fleet fleet.json --dir DIR [--label main] [--sets cfg,rs1] [--interval 0.25]
    fleet_sampler.py stop --dir DIR [--label main]
    fleet_sampler.py run ...          (the foreground loop that `start` detaches; fleet_lib.BackgroundTool)

Each tick sends ``hello`` to every member at once (one thread each) over a direct connection with
short timeouts (no authentication: mongod answers hello before it), and appends one line to
``DIR/sampler-<label>-timeline.jsonl``: ``{t, dt, members: {host: state}, election_ids: {host: id}}``.
A state is PRIMARY (isWritablePrimary), SECONDARY, OTHER (answers but neither: STARTUP,
STARTUP2, RECOVERING, a primary still draining...), DOWN (connection refused or lost: stopped,
rotating), TIMEOUT (no answer within 2 s: hung or not accepting yet) or ERROR:<codeName>
(answers hello with an error, e.g. ShutdownInProgress while quiescing). The primary's
electionId (mongod builds it from the term) shows each new primary. fleet_check.py reads the
timeline.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import threading
import time
from typing import Any

import fleet_lib
from pymongo import MongoClient
from pymongo.errors import NetworkTimeout, OperationFailure, PyMongoError

# pymongo waits up to serverSelectionTimeoutMS for a member its monitor marked unknown, and the
# monitor re-checks at most every 500 ms: a stopped member costs one such wait per tick. A member
# that accepts the connection but does not answer within the connect/socket timeouts counts as
# down too (TIMEOUT): long enough not to call a busy member of a loaded 2-core machine down.
SELECTION_TIMEOUT_MS = 200
CONNECT_TIMEOUT_MS = 2000
SOCKET_TIMEOUT_MS = 2000
WARM_UP_SECONDS = 10.0


def probe(client: MongoClient) -> tuple[str, str | None]:
    try:
        hello = client.admin.command("hello")
    except OperationFailure as exc:
        return f"ERROR:{exc.details.get('codeName', exc.code) if exc.details else exc.code}", None
    except NetworkTimeout:
        return "TIMEOUT", None
    except PyMongoError as exc:
        return ("TIMEOUT" if "timed out" in str(exc) else "DOWN"), None
    if hello.get("isWritablePrimary"):
        election_id = hello.get("electionId")
        return "PRIMARY", str(election_id) if election_id is not None else None
    if hello.get("secondary"):
        return "SECONDARY", None
    return "OTHER", None


def warm_up(client: MongoClient) -> None:
    deadline = time.monotonic() + WARM_UP_SECONDS
    while probe(client)[0] in ("DOWN", "TIMEOUT") and time.monotonic() < deadline:
        time.sleep(0.2)


def run(args: argparse.Namespace) -> int:
    fleet = fleet_lib.Fleet.load(args.fleet)
    fleet.install_resolver()
    members = [m for members in fleet.sets(args.sets).values() for m in members]
    clients = {
        m.host: fleet_lib.member_client(
            fleet,
            m,
            auth=False,
            serverSelectionTimeoutMS=SELECTION_TIMEOUT_MS,
            connectTimeoutMS=CONNECT_TIMEOUT_MS,
            socketTimeoutMS=SOCKET_TIMEOUT_MS,
            heartbeatFrequencyMS=500,
        )
        for m in members
    }
    stop = fleet_lib.stop_event()
    deadline = threading.Timer(args.max_seconds, stop.set)
    deadline.daemon = True
    deadline.start()
    print(f"sampler: {len(members)} members every {args.interval} s", flush=True)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=len(members)) as pool,
        TOOL.path(args, TIMELINE).open("a", encoding="utf-8") as timeline,
    ):
        # the first hello of a new client waits for its monitor's first TLS handshake: do not
        # record those (a member really down at the start is recorded from the first tick on)
        list(pool.map(warm_up, clients.values()))
        while not stop.is_set():
            started = time.time()
            answers = dict(zip(clients, pool.map(probe, clients.values()), strict=True))
            record: dict[str, Any] = {
                "t": started,
                "dt": round(time.time() - started, 3),
                "members": {host: state for host, (state, _) in answers.items()},
                "election_ids": {host: eid for host, (_, eid) in answers.items() if eid},
            }
            timeline.write(json.dumps(record) + "\n")
            timeline.flush()
            stop.wait(max(0.0, args.interval - (time.time() - started)))
    for client in clients.values():
        client.close()
    print("sampler: stopped", flush=True)
    return 0


def ticking(args: argparse.Namespace) -> bool:
    """Ready: the first ticks are written."""
    return len(fleet_lib.read_jsonl(TOOL.path(args, TIMELINE))) >= 2


def summary(args: argparse.Namespace) -> dict[str, Any]:
    return {"ticks": len(fleet_lib.read_jsonl(TOOL.path(args, TIMELINE)))}


TIMELINE = "-timeline.jsonl"
TOOL = fleet_lib.BackgroundTool(__file__, "sampler", (TIMELINE,), 0.25, run, ticking, summary, stop_timeout=30.0)

if __name__ == "__main__":
    sys.exit(TOOL.main(__doc__.splitlines()[0]))
