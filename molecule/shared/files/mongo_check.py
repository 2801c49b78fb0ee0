#!/usr/bin/env python3
"""Report what a PSMDB member says about itself and what its dbPath holds. Prints JSON.

Runs on the member host with the venv Python (pymongo, bson): the master key in use from
<dbPath>/storage.bson and from mongod's log (29115/29116/29111), serverStatus and
replSetGetStatus as the admin user over TLS, whether access without credentials is refused, and
optionally a w:majority write. serverStatus().encryptionAtRest is reported when the build has it
(PSMDB 7.0.14-8 has not): it is never needed to know the key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import bson
from pymongo import MongoClient, WriteConcern
from pymongo.errors import OperationFailure


def key_id_from_log(path: Path) -> str | None:
    """The KMIP key id of the last key event in mongod's log: read (29115), created (29116), rotated (29111)."""
    key_id = None
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            if '"id":291' not in line:
                continue
            entry = json.loads(line)
            attr = entry.get("attr", {})
            if entry.get("id") in (29115, 29116):
                key_id = attr.get("keyIdentifier", {}).get("kmipKeyIdentifier", key_id)
            elif entry.get("id") == 29111:
                key_id = attr.get("newKeyIdentifier", {}).get("kmipKeyIdentifier", key_id)
    return key_id


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--db-path", default="/var/lib/mongodb")
    parser.add_argument("--log-path", default="/var/log/mongodb/mongod.log")
    parser.add_argument("--write", action="store_true", help="insert a document with w:majority")
    parser.add_argument("--find-marker", help="count the documents an earlier --write inserted with this marker")
    args = parser.parse_args()
    common = {"tls": True, "tlsCAFile": args.ca_file, "serverSelectionTimeoutMS": 10000}
    out: dict = {"changed": False}

    metadata = bson.decode(Path(args.db_path, "storage.bson").read_bytes())
    out["storage_bson_key_id"] = (
        metadata.get("storage", {}).get("options", {}).get("encryption", {}).get("kmip", {}).get("keyId")
    )
    out["log_key_id"] = key_id_from_log(Path(args.log_path))

    with MongoClient(args.host, 27017, directConnection=True, **common) as anonymous:
        try:
            anonymous.admin.command("listDatabases")
            out["anonymous_refused"] = False
        except OperationFailure as exc:
            out["anonymous_refused"] = exc.code == 13

    with MongoClient(
        args.host,
        27017,
        directConnection=True,
        username=args.user,
        password=os.environ["KMIPOPS_ADMIN_PASSWORD"],
        authSource="admin",
        **common,
    ) as c:
        status = c.admin.command("serverStatus")
        out["encryption_at_rest"] = status.get("encryptionAtRest")  # None: this build has no such section
        out["uptime_seconds"] = status.get("uptime")
        rs = c.admin.command("replSetGetStatus")
        out["replset"] = {
            "set": rs.get("set"),
            "my_state": rs.get("myState"),
            "members": [
                {"name": m["name"], "state_str": m["stateStr"], "health": m.get("health")} for m in rs["members"]
            ],
        }
        out["tls"] = True  # requireTLS: this connection could not exist without it

    if args.write or args.find_marker:
        hosts = ",".join(m["name"] for m in out["replset"]["members"])
        with MongoClient(
            f"mongodb://{hosts}/?replicaSet={out['replset']['set']}",
            username=args.user,
            password=os.environ["KMIPOPS_ADMIN_PASSWORD"],
            authSource="admin",
            **common,
        ) as c:
            coll = c.kmipops_test.get_collection("writes", write_concern=WriteConcern(w="majority", wtimeout=30000))
            if args.find_marker:
                out["marker_count"] = coll.count_documents({"marker": args.find_marker})
            if args.write:
                marker = f"{args.host}-{time.time_ns()}"
                result = coll.insert_one({"marker": marker})
                out["write"] = {
                    "acknowledged": result.acknowledged,
                    "marker": marker,
                    "read_back": coll.count_documents({"marker": marker}) == 1,
                }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
