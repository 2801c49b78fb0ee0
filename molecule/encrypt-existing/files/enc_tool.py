#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side tool of the encrypt-existing scenario (judges from outside the collection).

    enc_tool.py fill --fleet fleet.json [--databases 4] [--docs 1500]
        inserts --docs documents into each of --databases databases of every set (w: majority),
        each holding MARKER, the text verify greps for in the members' dbPaths;
    enc_tool.py count --fleet fleet.json
        every member's document count per filled database over a direct connection: the same
        counts on every member of a set, or exit 1.

The admin password comes from KMIPOPS_ADMIN_PASSWORD (fleet_lib).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "files"))
import fleet_lib
from pymongo import InsertOne, WriteConcern

MARKER = "kmipops-plaintext-marker"
DATABASE_PREFIX = "kmipops_fill_"


def fill(fleet: fleet_lib.Fleet, databases: int, docs: int) -> dict[str, int]:
    counts = {}
    for replset in fleet.sets():
        client = fleet_lib.set_client(fleet, replset)
        total = 0
        for index in range(databases):
            collection = client[f"{DATABASE_PREFIX}{index}"].get_collection(
                "documents", write_concern=WriteConcern(w="majority", wtimeout=60000)
            )
            batch = [
                InsertOne({"_id": n, "text": f"{MARKER} {replset} db{index} doc {n}", "pad": "x" * 200})
                for n in range(docs)
            ]
            for start in range(0, len(batch), 500):
                collection.bulk_write(batch[start : start + 500], ordered=True)
            total += docs
        counts[replset] = total
        client.close()
    return counts


def count(fleet: fleet_lib.Fleet, databases: int) -> tuple[bool, dict[str, dict[str, list[int]]]]:
    report: dict[str, dict[str, list[int]]] = {}
    same = True
    for replset, members in fleet.sets().items():
        for member in members:
            client = fleet_lib.member_client(fleet, member)
            report.setdefault(replset, {})[member.host] = [
                client[f"{DATABASE_PREFIX}{i}"]["documents"].count_documents({}) for i in range(databases)
            ]
            client.close()
        if len({tuple(v) for v in report[replset].values()}) != 1:
            same = False
    return same, report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["fill", "count"])
    parser.add_argument("--fleet", required=True)
    parser.add_argument("--databases", type=int, default=4)
    parser.add_argument("--docs", type=int, default=1500)
    args = parser.parse_args()
    fleet = fleet_lib.Fleet.load(args.fleet)
    fleet.install_resolver()
    if args.action == "fill":
        print(json.dumps({"inserted": fill(fleet, args.databases, args.docs), "marker": MARKER}))
        return 0
    same, report = count(fleet, args.databases)
    print(json.dumps({"same_on_every_member": same, "counts": report}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
