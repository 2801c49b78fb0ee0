#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a rolling master-key rotation from outside the collection. Prints a JSON report; exit 1 on any problem.

    fleet_check.py --fleet F --dir D --before LABEL --after LABEL [--writer LABEL] [--sampler LABEL]
                   [--sets cfg,rs1] [--checks writes,availability,elections,keys,configs,orphans]
                   [--expect-elections 1] [--max-write-errors 0] [--expect-each-down]
                   [--ignore-down mongo3] [--not-expected-down mongo2]

Inputs in D (the rotation work directory): ``members-<label>.json`` (per member, read by Ansible
from the host: <dbPath>/storage.bson, /etc/mongod.conf, mongod's 29111 log lines),
``kms-<label>.json`` (every object of every PyKMIP server, from its database),
``replset-<label>.json`` (fleet_tool.py snapshot), ``writer-<label>-acks.jsonl`` /
``-errors.jsonl`` (fleet_writer.py), ``sampler-<label>-timeline.jsonl`` (fleet_sampler.py).

How each check decides (every one can fail; the Molecule scenario proves it, negative.yml):

- writes: every write the writer saw acknowledged is on every member afterwards. First a fence
  write with w = all members (wtimeout 120 s) per set, so that every member has applied
  everything before it; then each member's whole collection of _ids is read over a direct
  connection and compared. Also: at least --min-acks acknowledgements per set, at most
  --max-write-errors failed inserts, and (with a sampler timeline) writes acknowledged while a
  member of the set was down, proof that the writer covered the rotation.
- availability: in no sampler tick are two members of one set down at once; down means not
  answering hello as PRIMARY or SECONDARY (DOWN, TIMEOUT, OTHER, ERROR:...). The timeline must
  be dense (no gap over --max-tick-gap s) and, with --expect-each-down, show every member of
  the checked sets down at least once (the sampler did see the outages it must judge), but the
  hosts of --not-expected-down. A host of --ignore-down (one a fault killed on purpose) is never
  counted as down: the others must still never be two down at once.
- elections: per set, replSetGetStatus.term after minus before (mongod bumps the term for every
  election, won or not) equals --expect-elections. The sampler's primaries (electionId, which
  mongod builds from the term) are reported beside it.
- keys: every member's keyId in storage.bson differs from the one before; mongod's log gained
  exactly one 29111 "Rotated master encryption key" line, naming old -> new as storage.bson
  does; the new key is a KMIP object owned by the member's own identity (certificate CN) in
  the server's database, and GetAttributes(State) as that identity says ACTIVE; no two
  members share a key.
- configs: no security.kmip.rotateMasterKey left; keyIdentifier absent or equal to the new
  key; the rest of mongod.conf unchanged.
- orphans: the KMS objects that appeared are exactly the new keys of the members whose key
  changed (as many as rotated members, none more); nothing disappeared; no old object
  changed state (old keys stay untouched: backups and key.db.rotated need them).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import bson
import fleet_lib
import yaml
from pymongo import WriteConcern
from pymongo.errors import PyMongoError

CHECKS = ("writes", "availability", "elections", "keys", "configs", "orphans")
UP_STATES = ("PRIMARY", "SECONDARY")
ROTATED_LOG_ID = 29111


class Check:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []
        self.details: dict[str, Any] = {}

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def report(self) -> dict[str, Any]:
        return {"ok": not self.problems, "problems": self.problems, "details": self.details}


class Inputs:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(args.dir)
        self.fleet = fleet_lib.Fleet.load(args.fleet)
        self.sets = self.fleet.sets(args.sets)

    def json(self, name: str) -> Any:
        path = self.dir / name
        if not path.exists():
            raise SystemExit(f"missing input {path}")
        return json.loads(path.read_text(encoding="utf-8"))

    def members(self, label: str) -> dict[str, Any]:
        return self.json(f"members-{label}.json")

    def timeline(self) -> list[dict[str, Any]] | None:
        if not self.args.sampler:
            return None
        return fleet_lib.read_jsonl(self.dir / f"sampler-{self.args.sampler}-timeline.jsonl")


# -- what the member snapshots hold ----------------------------------------------------------------


def storage_key_id(member_snapshot: dict[str, Any]) -> str | None:
    raw = member_snapshot.get("storage_bson")
    if not raw:
        return None
    metadata = bson.decode(base64.b64decode(raw))
    return metadata.get("storage", {}).get("options", {}).get("encryption", {}).get("kmip", {}).get("keyId")


def rotation_lines(member_snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    lines = []
    for text in member_snapshot.get("rotation_log", []):
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if record.get("id") == ROTATED_LOG_ID:
            lines.append(record)
    return lines


def mongod_conf(member_snapshot: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(member_snapshot.get("mongod_conf") or "") or {}


def kms_index(snapshot: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    servers = list(snapshot.items())
    # The test fleets' PyKMIP servers share one database (a clustered KMS, molecule/shared/create.yml):
    # every server then lists the same objects, which are counted once, under the first server.
    if len(servers) > 1 and all(data["objects"] == servers[0][1]["objects"] for _, data in servers[1:]):
        servers = servers[:1]
    return {(server, obj["uid"]): obj for server, data in servers for obj in data["objects"]}


# -- the checks --------------------------------------------------------------------------------------


def down_intervals(timeline: list[dict[str, Any]], hosts: list[str]) -> list[tuple[float, float]]:
    """[start, end) of the tick spans in which at least one of ``hosts`` was not up."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for tick, following in zip(timeline, [*timeline[1:], None], strict=True):
        down = any(tick["members"].get(h) not in UP_STATES for h in hosts)
        if down and start is None:
            start = tick["t"]
        if start is not None and (not down or following is None):
            spans.append((start, tick["t"] if not down else tick["t"] + 0.001))
            start = None
    return spans


def check_writes(inputs: Inputs, check: Check) -> None:
    args = inputs.args
    if not args.writer:
        check.fail("no writer records given (--writer)")
        return
    acks = fleet_lib.read_jsonl(inputs.dir / f"writer-{args.writer}-acks.jsonl")
    errors = fleet_lib.read_jsonl(inputs.dir / f"writer-{args.writer}-errors.jsonl")
    timeline = inputs.timeline()
    for name, members in inputs.sets.items():
        acked = [r for r in acks if r["replset"] == name]
        failed = [r for r in errors if r["replset"] == name]
        times = sorted(r["t"] for r in acked)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        info: dict[str, Any] = {
            "acknowledged": len(acked),
            "errors": len(failed),
            "longest_gap_between_acks_s": round(max(gaps), 3) if gaps else None,
        }
        check.details[name] = info
        if len(acked) < args.min_acks:
            check.fail(f"{name}: only {len(acked)} acknowledged writes (want >= {args.min_acks}): nothing to judge")
        if len(failed) > args.max_write_errors:
            first = failed[0]
            check.fail(
                f"{name}: {len(failed)} inserts failed (allowed {args.max_write_errors}); first at {first['t']:.3f}: "
                f"{first['error']} {first.get('code')}: {first['message'][:200]}"
            )
        if timeline:
            spans = down_intervals(timeline, [m.host for m in members])
            during = sum(1 for t in times if any(a <= t < b for a, b in spans))
            info["acknowledged_while_a_member_was_down"] = during
            if spans and not during:
                check.fail(f"{name}: no write was acknowledged while a member was down: the writer did not cover it")
        database = inputs.fleet.database(name)
        try:
            with fleet_lib.set_client(inputs.fleet, name, serverSelectionTimeoutMS=30000) as client:
                fence = client[database].get_collection(
                    fleet_lib.WRITES_COLLECTION, write_concern=WriteConcern(w=len(members), wtimeout=120000)
                )
                fence.insert_one({"replset": name, "fence": True})
        except PyMongoError as exc:
            check.fail(f"{name}: a write acknowledged by all {len(members)} members failed: {exc}")
            continue
        wanted = {r["_id"] for r in acked}
        info["members"] = {}
        for member in members:
            with fleet_lib.member_client(inputs.fleet, member) as client:
                present = {doc["_id"] for doc in client[database][fleet_lib.WRITES_COLLECTION].find({}, {"_id": 1})}
            missing = sorted(wanted - present)
            info["members"][member.host] = {"documents": len(present), "missing": len(missing)}
            if missing:
                check.fail(f"{member.host}: {len(missing)} acknowledged writes missing, e.g. {missing[:3]}")


def check_availability(inputs: Inputs, check: Check) -> None:
    args = inputs.args
    timeline = inputs.timeline()
    if not timeline or len(timeline) < 10:
        check.fail(f"the sampler timeline has {len(timeline or [])} ticks: nothing to judge")
        return
    gaps = [(b["t"] - a["t"], a["t"]) for a, b in itertools.pairwise(timeline)]
    longest, at = max(gaps)
    check.details["ticks"] = len(timeline)
    check.details["seconds"] = round(timeline[-1]["t"] - timeline[0]["t"], 1)
    check.details["longest_tick_gap_s"] = round(longest, 3)
    if longest > args.max_tick_gap:
        check.fail(f"the sampler was blind for {longest:.1f} s from {at:.3f} (max {args.max_tick_gap} s)")
    ignored = set(args.ignore_down or [])
    for name, members in inputs.sets.items():
        hosts = [m.host for m in members]
        windows: list[dict[str, Any]] = []
        seen_down = dict.fromkeys(hosts, 0)
        no_primary_ticks = 0
        for tick in timeline:
            states = {h: tick["members"].get(h, "MISSING") for h in hosts}
            # a member a fault killed on purpose (--ignore-down) is judged by the fault, not here
            down = sorted(h for h, state in states.items() if state not in UP_STATES and h not in ignored)
            for host in down:
                seen_down[host] += 1
            if "PRIMARY" not in states.values():
                no_primary_ticks += 1
            if len(down) >= 2:
                if windows and windows[-1]["members"] == down and windows[-1]["open"]:
                    windows[-1]["to"] = tick["t"]
                else:
                    windows.append(
                        {"members": down, "from": tick["t"], "to": tick["t"], "states": states, "open": True}
                    )
            elif windows:
                windows[-1]["open"] = False
        check.details[name] = {"ticks_down": seen_down, "ticks_without_primary": no_primary_ticks}
        for window in windows:
            check.fail(
                f"{name}: {len(window['members'])} members down at once ({', '.join(window['members'])}) "
                f"from {window['from']:.3f} for {window['to'] - window['from']:.2f} s: {window['states']}"
            )
        if args.expect_each_down:
            never = [h for h, count in seen_down.items() if not count and h not in (args.not_expected_down or [])]
            if never:
                check.fail(f"{name}: the sampler never saw {never} down: it cannot vouch for their outages")


def check_elections(inputs: Inputs, check: Check) -> None:
    args = inputs.args
    before = inputs.json(f"replset-{args.before}.json")["sets"]
    after = inputs.json(f"replset-{args.after}.json")["sets"]
    timeline = inputs.timeline() or []
    for name, members in inputs.sets.items():
        hosts = {m.host for m in members}
        primaries: list[tuple[str, str]] = []
        for tick in timeline:
            for host, election_id in tick.get("election_ids", {}).items():
                if host in hosts and (not primaries or primaries[-1] != (host, election_id)):
                    primaries.append((host, election_id))
        delta = after[name]["term"] - before[name]["term"]
        check.details[name] = {
            "term_before": before[name]["term"],
            "term_after": after[name]["term"],
            "elections": delta,
            "primary_before": before[name]["primary"],
            "primary_after": after[name]["primary"],
            "primaries_seen_by_sampler": [f"{h} ({e})" for h, e in primaries],
        }
        if delta != args.expect_elections:
            check.fail(f"{name}: {delta} elections (replSetGetStatus.term), expected {args.expect_elections}")


def check_keys(inputs: Inputs, check: Check) -> None:
    import fleet_kms  # PyKMIP: imported only when needed

    args = inputs.args
    before, after = inputs.members(args.before), inputs.members(args.after)
    kms = kms_index(inputs.json(f"kms-{args.after}.json"))
    servers = {s.host: s for s in inputs.fleet.kmip_servers}
    new_ids: dict[str, str] = {}
    for members in inputs.sets.values():
        for member in members:
            host = member.host
            old_id, new_id = storage_key_id(before[host]), storage_key_id(after[host])
            log_before, log_after = rotation_lines(before[host]), rotation_lines(after[host])
            info: dict[str, Any] = {"old": old_id, "new": new_id, "rotations_logged": len(log_after) - len(log_before)}
            check.details[host] = info
            if not new_id:
                check.fail(f"{host}: no KMIP keyId in storage.bson")
                continue
            if new_id == old_id:
                check.fail(f"{host}: still on its old key {old_id} (storage.bson)")
                continue
            new_ids[host] = new_id
            if len(log_after) - len(log_before) != 1:
                check.fail(f"{host}: {len(log_after) - len(log_before)} rotations logged (29111), expected exactly 1")
            elif log_after:
                attr = log_after[-1].get("attr", {})
                logged = (
                    attr.get("oldKeyIdentifier", {}).get("kmipKeyIdentifier"),
                    attr.get("newKeyIdentifier", {}).get("kmipKeyIdentifier"),
                )
                if logged != (old_id, new_id):
                    check.fail(
                        f"{host}: mongod logged rotation {logged[0]} -> {logged[1]}, "
                        f"storage.bson says {old_id} -> {new_id}"
                    )
            owned = [(server, obj) for (server, uid), obj in kms.items() if uid == new_id and obj["owner"] == host]
            if len(owned) != 1:
                check.fail(f"{host}: {len(owned)} KMS objects {new_id} owned by {host}, expected 1")
                continue
            server, obj = owned[0]
            info["kms"] = {"server": server, "state_in_database": obj["state"]}
            try:
                with fleet_kms.member_kms(inputs.fleet, host, servers[server]) as client:
                    state = fleet_kms.key_state(client, new_id)
            except Exception as exc:  # any KMIP failure is a finding, not a crash
                check.fail(f"{host}: GetAttributes(State) of {new_id} on {server} as {host} failed: {exc}")
                continue
            info["kms"]["state"] = state
            if state != "ACTIVE":
                check.fail(f"{host}: its new key {new_id} on {server} is {state}, not ACTIVE")
    shared = {key for key in new_ids.values() if list(new_ids.values()).count(key) > 1}
    if shared:
        check.fail(f"members share keys: {sorted(shared)}")


def check_configs(inputs: Inputs, check: Check) -> None:
    args = inputs.args
    before, after = inputs.members(args.before), inputs.members(args.after)
    for members in inputs.sets.values():
        for member in members:
            host = member.host
            conf_before, conf_after = mongod_conf(before[host]), mongod_conf(after[host])
            kmip = conf_after.get("security", {}).get("kmip", {})
            new_id = storage_key_id(after[host])
            check.details[host] = {"keyIdentifier": kmip.get("keyIdentifier"), "storage_key_id": new_id}
            if "rotateMasterKey" in kmip:
                check.fail(f"{host}: mongod.conf still has security.kmip.rotateMasterKey: {kmip['rotateMasterKey']}")
            if "keyIdentifier" in kmip and str(kmip["keyIdentifier"]) != new_id:
                check.fail(f"{host}: mongod.conf names key {kmip['keyIdentifier']}, storage.bson {new_id}")
            for conf in (conf_before, conf_after):
                conf.get("security", {}).get("kmip", {}).pop("keyIdentifier", None)
                conf.get("security", {}).get("kmip", {}).pop("rotateMasterKey", None)
            if conf_before != conf_after:
                check.fail(f"{host}: mongod.conf changed beyond keyIdentifier/rotateMasterKey")


def check_orphans(inputs: Inputs, check: Check) -> None:
    args = inputs.args
    before = kms_index(inputs.json(f"kms-{args.before}.json"))
    after = kms_index(inputs.json(f"kms-{args.after}.json"))
    members_before, members_after = inputs.members(args.before), inputs.members(args.after)
    expected: set[tuple[str, str]] = set()
    rotated = []
    for host in members_after:
        old_id, new_id = storage_key_id(members_before.get(host, {})), storage_key_id(members_after[host])
        if new_id and new_id != old_id:
            rotated.append(host)
            expected |= {key for key, obj in after.items() if key[1] == new_id and obj["owner"] == host}
    appeared = set(after) - set(before)
    gone = set(before) - set(after)
    changed = sorted(key for key in set(before) & set(after) if before[key]["state"] != after[key]["state"])
    check.details = {
        "objects_before": len(before),
        "objects_after": len(after),
        "appeared": len(appeared),
        "rotated_members": rotated,
    }
    if len(appeared) != len(rotated):
        check.fail(f"{len(appeared)} KMS objects appeared for {len(rotated)} rotated members")
    orphans = sorted(appeared - expected)
    if orphans:
        described = [f"{server}/{uid} (owner {after[(server, uid)]['owner']})" for server, uid in orphans]
        check.fail(f"orphan KMS objects (no member uses them): {described}")
    if gone:
        check.fail(f"KMS objects disappeared: {sorted(gone)}")
    if changed and not args.allow_state_changes:
        described = [f"{s}/{u} {before[(s, u)]['state']} -> {after[(s, u)]['state']}" for s, u in changed]
        check.fail(f"KMS objects present before changed state: {described}")


RUNNERS = {
    "writes": check_writes,
    "availability": check_availability,
    "elections": check_elections,
    "keys": check_keys,
    "configs": check_configs,
    "orphans": check_orphans,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", required=True, help="fleet.json")
    parser.add_argument("--dir", required=True, help="the rotation work directory (inputs, report)")
    parser.add_argument("--before", help="label of the snapshot before")
    parser.add_argument("--after", help="label of the snapshot after")
    parser.add_argument("--writer", help="label of the writer's records")
    parser.add_argument("--sampler", help="label of the sampler's timeline")
    parser.add_argument("--sets", type=lambda text: text.split(","), help="replica sets to judge (default: all)")
    parser.add_argument("--checks", type=lambda text: text.split(","), default=list(CHECKS))
    parser.add_argument("--expect-elections", type=int, default=1, help="elections per set")
    parser.add_argument("--max-write-errors", type=int, default=0)
    parser.add_argument("--min-acks", type=int, default=20)
    parser.add_argument("--max-tick-gap", type=float, default=3.0)
    parser.add_argument("--expect-each-down", action="store_true", help="every member must be seen down once")
    parser.add_argument(
        "--ignore-down",
        type=lambda text: text.split(","),
        help="availability: inventory hosts a fault took down on purpose, not counted as down",
    )
    parser.add_argument(
        "--not-expected-down",
        type=lambda text: text.split(","),
        help="with --expect-each-down: inventory hosts the operation left alone (e.g. converted earlier)",
    )
    parser.add_argument("--allow-state-changes", action="store_true", help="old KMS objects may change state")
    parser.add_argument("--report", help="also write the report to this file")
    args = parser.parse_args()
    unknown = sorted(set(args.checks) - set(CHECKS))
    if unknown:
        parser.error(f"--checks: unknown {unknown}; known {list(CHECKS)}")
    if set(args.checks) & {"elections", "keys", "configs", "orphans"} and not (args.before and args.after):
        parser.error("--before and --after are required by elections, keys, configs and orphans")
    inputs = Inputs(args)
    inputs.fleet.install_resolver()
    checks = [Check(name) for name in CHECKS if name in args.checks]
    for check in checks:
        RUNNERS[check.name](inputs, check)
    report = {
        "ok": all(not c.problems for c in checks),
        "sets": sorted(inputs.sets),
        "checks": {c.name: c.report() for c in checks},
    }
    if args.report:
        fleet_lib.write_json(Path(args.report), report)
    print(json.dumps(report, default=str))
    for check in checks:
        status = "ok  " if not check.problems else "FAIL"
        print(f"{status} {check.name}", file=sys.stderr)
        for problem in check.problems:
            print(f"     - {problem}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
