#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an operator types into mongosh during a rolling operation, as one-shot commands. Prints JSON.

    fleet_tool.py roles        --fleet F [--sets a,b]          every member's state, from its primary's view
    fleet_tool.py stepdown     --fleet F --member H            rs.stepDown() on H, then wait for a new primary
    fleet_tool.py wait-member  --fleet F --member H [--max-lag S] [--timeout S]
                                                               until H's primary sees H SECONDARY, lag <= S
    fleet_tool.py wait-healthy --fleet F [--sets a,b] [--max-lag S] [--timeout S]
                                                               until every set has a primary, the rest SECONDARY
    fleet_tool.py snapshot     --fleet F --out FILE [--sets a,b]
                                                               per set: primary, term, members, electionMetrics
    fleet_tool.py kms-register --fleet F --member H            register a stray key as H's KMIP identity

Runs on the controller (repo venv); see fleet_lib.py for how it reaches the members. The
``wait-*`` commands poll with a deadline and fail naming what they were waiting for.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

import fleet_lib
from pymongo.errors import AutoReconnect, PyMongoError


def _lag_seconds(status: dict[str, Any], host_name: str) -> float | None:
    primary = next((m for m in status["members"] if m.get("stateStr") == "PRIMARY"), None)
    member = next((m for m in status["members"] if m["name"] == host_name), None)
    if primary is None or member is None or not member.get("optimeDate") or not primary.get("optimeDate"):
        return None
    return max(0.0, (primary["optimeDate"] - member["optimeDate"]).total_seconds())


def roles(fleet: fleet_lib.Fleet, args: argparse.Namespace) -> dict[str, Any]:
    members: dict[str, str] = {}
    primaries: dict[str, str] = {}
    for name in fleet.sets(args.sets):
        primary, status = fleet_lib.wait_for(
            lambda name=name: fleet_lib.find_primary(fleet, name), args.timeout, f"a primary in {name}"
        )
        primaries[name] = primary.host
        for entry in status["members"]:
            members[entry["name"].rsplit(":", 1)[0]] = entry["stateStr"]
    return {"members": members, "primaries": primaries}


def stepdown(fleet: fleet_lib.Fleet, args: argparse.Namespace) -> dict[str, Any]:
    member = fleet.member(args.member)
    started = time.monotonic()
    with fleet_lib.member_client(fleet, member) as client:
        if not client.admin.command("hello").get("isWritablePrimary"):
            raise SystemExit(f"{member.host} is not the primary of {member.replset}")
        # a stepdown closes no connection since 4.2; an old primary that drops it is fine too
        try:
            client.admin.command("replSetStepDown", 60, secondaryCatchUpPeriodSecs=10)
        except PyMongoError as exc:
            if "not primary" not in str(exc).lower() and not isinstance(exc, AutoReconnect):
                raise

    def new_primary() -> fleet_lib.Member | None:
        primary, _status = fleet_lib.find_primary(fleet, member.replset)
        return primary if primary.host != member.host else None

    primary = fleet_lib.wait_for(new_primary, args.timeout, f"a new primary of {member.replset}")
    return {
        "changed": True,
        "old_primary": member.host,
        "new_primary": primary.host,
        "seconds": round(time.monotonic() - started, 2),
    }


def wait_member(fleet: fleet_lib.Fleet, args: argparse.Namespace) -> dict[str, Any]:
    member = fleet.member(args.member)
    started = time.monotonic()
    seen: dict[str, Any] = {}

    def member_caught_up() -> bool:
        primary, status = fleet_lib.find_primary(fleet, member.replset)
        entry = next(m for m in status["members"] if m["name"] == member.name)
        lag = _lag_seconds(status, member.name)
        seen.update(primary=primary.host, state=entry["stateStr"], health=entry.get("health"), lag_s=lag)
        return entry["stateStr"] == "SECONDARY" and entry.get("health") == 1 and lag is not None and lag <= args.max_lag

    fleet_lib.wait_for(
        member_caught_up, args.timeout, f"{member.host} SECONDARY with lag <= {args.max_lag} s (last seen: {seen})"
    )
    return {"seconds": round(time.monotonic() - started, 2), **seen}


def wait_healthy(fleet: fleet_lib.Fleet, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    primaries: dict[str, str] = {}
    for name, members in fleet.sets(args.sets).items():

        def healthy(name: str = name, members: list[fleet_lib.Member] = members) -> bool:
            primary, status = fleet_lib.find_primary(fleet, name)
            states = {
                m["name"]: (m["stateStr"], m.get("health"), _lag_seconds(status, m["name"])) for m in status["members"]
            }
            primaries[name] = primary.host
            return all(
                member.host == primary.host
                or (states[member.name][:2] == ("SECONDARY", 1) and (states[member.name][2] or 0) <= args.max_lag)
                for member in members
            )

        fleet_lib.wait_for(healthy, args.timeout, f"{name}: a primary and every other member SECONDARY, caught up")
    return {"seconds": round(time.monotonic() - started, 2), "primaries": primaries}


def snapshot(fleet: fleet_lib.Fleet, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"taken": datetime.datetime.now(datetime.UTC).isoformat(), "sets": {}}
    for name, members in fleet.sets(args.sets).items():
        primary, status = fleet_lib.wait_for(
            lambda name=name: fleet_lib.find_primary(fleet, name), args.timeout, f"a primary in {name}"
        )
        with fleet_lib.member_client(fleet, primary) as client:
            config = client.admin.command("replSetGetConfig")["config"]
        metrics: dict[str, Any] = {}
        for member in members:
            try:
                with fleet_lib.member_client(fleet, member) as client:
                    metrics[member.host] = client.admin.command("serverStatus").get("electionMetrics")
            except PyMongoError as exc:
                metrics[member.host] = {"error": str(exc)[:200]}
        result["sets"][name] = {
            "primary": primary.host,
            # replSetGetStatus.term: every election (won or lost) bumps it; a stepdown alone does not
            "term": status.get("term"),
            "config_version": config.get("version"),
            "config_term": config.get("term"),
            "configsvr": config.get("configsvr", False),
            "members": {
                m["name"].rsplit(":", 1)[0]: {"state": m["stateStr"], "health": m.get("health")}
                for m in status["members"]
            },
            # serverStatus().electionMetrics of each member, where the build has it (mongod does)
            "election_metrics": metrics,
        }
    fleet_lib.write_json(Path(args.out), result)
    return {"written": str(args.out), "terms": {name: s["term"] for name, s in result["sets"].items()}}


def kms_register(fleet: fleet_lib.Fleet, args: argparse.Namespace) -> dict[str, Any]:
    import fleet_kms  # PyKMIP: imported only by the commands that need it

    server = fleet.kmip_servers[0]
    with fleet_kms.member_kms(fleet, args.member, server) as client:
        uid = fleet_kms.register_aes_key(client)
    return {"changed": True, "uid": uid, "server": server.host, "owner": args.member}


COMMANDS = {
    "roles": roles,
    "stepdown": stepdown,
    "wait-member": wait_member,
    "wait-healthy": wait_healthy,
    "snapshot": snapshot,
    "kms-register": kms_register,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--fleet", required=True, help="fleet.json")
    parser.add_argument("--sets", type=lambda text: text.split(","), help="replica sets (default: all)")
    parser.add_argument("--member", help="a member's inventory host name")
    parser.add_argument("--max-lag", type=float, default=5.0, help="seconds behind the primary")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--out", help="snapshot: the JSON file to write")
    args = parser.parse_args()
    if args.command in ("stepdown", "wait-member", "kms-register") and not args.member:
        parser.error(f"{args.command}: --member is required")
    if args.command == "snapshot" and not args.out:
        parser.error("snapshot: --out is required")
    fleet = fleet_lib.Fleet.load(args.fleet)
    fleet.install_resolver()
    print(json.dumps(COMMANDS[args.command](fleet, args), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
