#!/usr/bin/env python3
"""Initiate a replica set and create its first (root) user, idempotently. Prints JSON.

Runs on a member host with the venv Python that has pymongo (ansible.builtin.script). The
password comes from the environment (KMIPOPS_ADMIN_PASSWORD), never from the command line.
Before the first user exists, mongod's localhost exception lets a loopback client initiate the
set and create that user; every test host has a loopback address, so any member qualifies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

NOT_YET_INITIALIZED = 94
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18


def client(host: str, args: argparse.Namespace, auth: bool) -> MongoClient:
    options = {
        "tls": True,
        "tlsCAFile": args.ca_file,
        "directConnection": True,
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
    }
    if auth:
        options.update(username=args.user, password=os.environ["KMIPOPS_ADMIN_PASSWORD"], authSource="admin")
    name, _, port = host.partition(":")
    return MongoClient(name, int(port or 27017), **options)


def primary_of(status: dict) -> str | None:
    for member in status.get("members", []):
        if member.get("stateStr") == "PRIMARY":
            return member["name"]
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True, help="member to talk to (host:port)")
    parser.add_argument("--replset", required=True)
    parser.add_argument("--members", required=True, help="comma-separated host:port list")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--configsvr", action="store_true", help="the members run with sharding.clusterRole configsvr")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    result: dict = {"changed": False, "initiated": False, "user_created": False}

    # Users exist already: everything below is done, just report the state.
    try:
        with client(args.host, args, auth=True) as c:
            status = c.admin.command("replSetGetStatus")
            result.update(primary=primary_of(status), set=status.get("set"))
            print(json.dumps(result))
            return 0
    except OperationFailure as exc:
        if exc.code not in (AUTHENTICATION_FAILED, UNAUTHORIZED):
            raise

    with client(args.host, args, auth=False) as c:
        try:
            c.admin.command("replSetGetStatus")
        except OperationFailure as exc:
            if exc.code != NOT_YET_INITIALIZED:
                raise
            members = [{"_id": i, "host": h} for i, h in enumerate(args.members.split(","))]
            config: dict = {"_id": args.replset, "members": members}
            if args.configsvr:
                # a mongod started with clusterRole configsvr refuses a config without it (BadValue
                # "Nodes started with the --configsvr flag must have configsvr:true in their config")
                config["configsvr"] = True
            c.admin.command("replSetInitiate", config)
            result.update(changed=True, initiated=True)

        primary = None
        while True:
            try:
                status = c.admin.command("replSetGetStatus")
                primary = primary_of(status)
            except PyMongoError as exc:  # the member may still be electing
                status = {"error": str(exc)}
            if primary:
                break
            if time.monotonic() > deadline:
                print(json.dumps({"failed": True, "msg": f"no primary after {args.timeout} s", "status": status}))
                return 1
            time.sleep(1)

    with client(primary, args, auth=False) as c:
        c.admin.command(
            "createUser",
            args.user,
            pwd=os.environ["KMIPOPS_ADMIN_PASSWORD"],
            roles=[{"role": "root", "db": "admin"}],
            writeConcern={"w": "majority", "wtimeout": int(args.timeout * 1000)},
        )
    result.update(changed=True, user_created=True, primary=primary, set=args.replset)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
