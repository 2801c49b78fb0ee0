# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_waves
short_description: Plan a rolling operation over replica sets in waves, from what each member reports
version_added: 0.1.0
description:
  - Takes one record per inventory host - what P(kmipops.psmdb.mongod_replset_info#module) returned on that host
    about its own replica set (set name, the member's own name, the primary, every member's state, health, lag,
    priority, votes) plus whether the caller selected the host - and returns the plan of a rolling operation that
    never has more than one member of a set down.
  - The replica sets come from the members' live C(replSetGetStatus), not from inventory groups. Each inventory
    host is mapped to the member it runs (C(is_self)); two hosts reaching the same member is a problem.
  - B(Waves.) Wave k holds the k-th selected secondary of every set (in the order of the set's configuration), so
    all sets move at once. The last wave holds every selected primary, to be stepped down and then worked on. A
    sharded cluster is its config server set plus its shard sets; they are planned together the same way.
  - B(Pre-flight.) The plan lists every problem that must stop the operation before any member is touched - per
    set not exactly one primary, a member not healthy (not PRIMARY, SECONDARY or ARBITER, or health 0), a member
    lagging more than O(max_lag_seconds), a majority that would not survive one more member down, a host whose
    set could not be read, and the problems the caller found on a host (C(problems) of its record) - each naming
    the set, the member and the host.
  - A primary without an electable secondary (healthy, priority above 0, votes, not hidden, not an arbiter) is
    not stepped down; it is planned as skipped with that reason. Arbiters hold no data and are skipped.
  - Used by the C(kmipops.psmdb.mongod_fleet) role (C(kmip_rotation) is built on it); pure data, no I/O.
author:
  - kmipops.psmdb contributors (@kmipops)
options:
  _input:
    description:
      - One record per inventory host, a dict with C(host) (inventory name), C(ok) (the set could be read),
        C(error), C(set_name), C(member) (the member's own name, C(host:port) as in the set configuration),
        C(primary), C(term), C(members) (as P(kmipops.psmdb.mongod_replset_info#module) returns them),
        C(majority_survives_one_down), C(selected) (default true), C(skip_reason), C(problems) (list of
        sentences).
    type: list
    elements: dict
    required: true
  max_lag_seconds:
    description: Highest lag behind the primary, in seconds, that a member may show in the pre-flight.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Plan the waves (once, from every host's record)
  ansible.builtin.set_fact:
    fleet_plan: >-
      {{ ansible_play_hosts | map('extract', hostvars, 'mongod_fleet_record') | list
         | kmipops.psmdb.fleet_waves(max_lag_seconds=10) }}
  run_once: true

- name: Print the waves
  ansible.builtin.debug:
    msg: "{{ fleet_plan.lines }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    ok:
      description: No problem; the operation may start.
      type: bool
    problems:
      description: Each with C(set_name), C(member), C(host) (null when unknown) and C(problem) (a sentence).
      type: list
      elements: dict
    wave_count:
      description: Number of waves (the primaries' wave is the last).
      type: int
    waves:
      description: Per wave C(wave) (0-based) and C(members) (C(host), C(set_name), C(member), C(role)).
      type: list
      elements: dict
    hosts:
      description: Per inventory host C(set_name), C(member), C(role) (C(primary), C(secondary), C(arbiter),
        C(unknown)), C(action) (C(work) or C(skip)), C(wave) (null when skipped), C(reason), C(peers) (the other
        members' names, C(host:port)), C(primary).
      type: dict
    sets:
      description: Per replica set C(primary), C(term), C(members) (names, configuration order), C(hosts) (member
        name to inventory host), C(not_in_play) (members no inventory host reaches; they are not worked on),
        C(waves) (the set's members in wave order).
      type: dict
    lines:
      description: A readable rendering of the plan, one line per wave and per problem.
      type: list
      elements: str
"""

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

HEALTHY_STATES = ("PRIMARY", "SECONDARY", "ARBITER")


def _name(value: Any) -> str | None:
    """A member name from a name or a member dict (``self`` may be either)."""
    if isinstance(value, Mapping):
        value = value.get("name")
    return str(value) if value not in (None, "") else None


def _electable(member: Mapping[str, Any]) -> bool:
    return (
        member.get("state_str") == "SECONDARY"
        and member.get("health", 1) == 1
        and float(member.get("priority", 1) or 0) > 0
        and int(member.get("votes", 1) or 0) > 0
        and not member.get("hidden", False)
        and not member.get("arbiter_only", False)
    )


def _view_of(records: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The set as its primary sees it when the primary is in play, else as the first member does."""
    for record in records:
        own = _own_member(record)
        if own and own.get("state_str") == "PRIMARY":
            return record
    return records[0]


def _own_member(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    name = record.get("member")
    for member in record.get("members") or []:
        if member.get("is_self") or (name and member.get("name") == name):
            return member
    return None


def fleet_waves(records: list[Mapping[str, Any]], max_lag_seconds: int = 10) -> dict[str, Any]:
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise AnsibleFilterError("fleet_waves: the input must be a list of per-host records (dicts)")
    problems: list[dict[str, Any]] = []

    def problem(set_name: str | None, member: str | None, host: str | None, text: str) -> None:
        problems.append({"set_name": set_name, "member": member, "host": host, "problem": text})

    by_set: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        host = str(record.get("host"))
        member = _name(record.get("member"))
        for text in record.get("problems") or []:
            problem(record.get("set_name"), member, host, str(text))
        if not record.get("ok", True) or not record.get("set_name"):
            problem(
                record.get("set_name"),
                member,
                host,
                f"its replica set could not be read: {record.get('error') or 'no set name (not a replica set member?)'}",
            )
            continue
        by_set.setdefault(str(record["set_name"]), []).append(record)

    hosts: dict[str, dict[str, Any]] = {}
    sets: dict[str, dict[str, Any]] = {}
    secondary_waves: dict[str, list[str]] = {}
    primaries: dict[str, str] = {}
    for set_name in sorted(by_set):
        set_records = by_set[set_name]
        view = _view_of(set_records)
        members = list(view.get("members") or [])
        names = [str(m.get("name")) for m in members]
        host_of: dict[str, str] = {}
        for record in set_records:
            member = _name(record.get("member"))
            host = str(record.get("host"))
            if member is None:
                problem(set_name, None, host, "the member's own name is unknown (no member marked is_self)")
                continue
            if member in host_of:
                problem(
                    set_name,
                    member,
                    host,
                    f"inventory hosts {host_of[member]} and {host} both reach member {member}: fix the inventory "
                    "(login_host or ansible_host), or a member would be worked on twice and another not at all",
                )
                continue
            if member not in names:
                problem(set_name, member, host, f"member {member} is not in the configuration of set {set_name}")
            host_of[member] = host
        primaries_seen = [m for m in members if m.get("state_str") == "PRIMARY"]
        if len(primaries_seen) != 1:
            problem(
                set_name,
                None,
                view.get("host"),
                f"set {set_name} has {len(primaries_seen)} primaries (exactly one is needed)"
                + (f": {', '.join(str(m.get('name')) for m in primaries_seen)}" if primaries_seen else ""),
            )
        for m in members:
            state = m.get("state_str")
            if m.get("health", 1) != 1 or state not in HEALTHY_STATES:
                problem(set_name, m.get("name"), host_of.get(str(m.get("name"))), f"member is {state} (health {m.get('health')})")
            lag = m.get("lag_seconds")
            if state == "SECONDARY" and lag is not None and float(lag) > max_lag_seconds:
                problem(
                    set_name,
                    m.get("name"),
                    host_of.get(str(m.get("name"))),
                    f"member lags {lag} s behind the primary (at most {max_lag_seconds} s allowed)",
                )
        if not view.get("majority_survives_one_down", False):
            problem(set_name, None, view.get("host"), "a majority of the voting members would not survive one more member down")
        primary_name = _name(view.get("primary")) or (_name(primaries_seen[0]) if len(primaries_seen) == 1 else None)
        electable = [m for m in members if _electable(m) and m.get("name") != primary_name]
        order: list[str] = []
        for m in members:
            name = str(m.get("name"))
            host = host_of.get(name)
            if host is None:
                continue
            record = next(r for r in set_records if str(r.get("host")) == host)
            entry: dict[str, Any] = {
                "set_name": set_name,
                "member": name,
                "primary": primary_name,
                "peers": [n for n in names if n != name],
                "wave": None,
                "action": "work",
                "reason": None,
            }
            if m.get("arbiter_only") or m.get("state_str") == "ARBITER":
                entry.update(role="arbiter", action="skip", reason="an arbiter holds no data")
            elif name == primary_name:
                entry["role"] = "primary"
                if not electable:
                    entry.update(action="skip", reason="no electable secondary to hand the primary over to: left alone")
            else:
                entry["role"] = "secondary"
            if entry["action"] == "work" and not record.get("selected", True):
                entry.update(action="skip", reason=record.get("skip_reason") or "not selected")
            hosts[host] = entry
            if entry["action"] == "work":
                if entry["role"] == "primary":
                    primaries[set_name] = host
                else:
                    order.append(host)
        secondary_waves[set_name] = order
        sets[set_name] = {
            "primary": primary_name,
            "term": view.get("term"),
            "members": names,
            "hosts": host_of,
            "not_in_play": [n for n in names if n not in host_of],
            "waves": [],
        }
    for record in records:
        host = str(record.get("host"))
        if host not in hosts:
            hosts[host] = {
                "set_name": record.get("set_name"),
                "member": _name(record.get("member")),
                "role": "unknown",
                "primary": None,
                "peers": [],
                "wave": None,
                "action": "skip",
                "reason": "its replica set could not be read",
            }

    primary_wave = max((len(order) for order in secondary_waves.values()), default=0)
    wave_count = primary_wave + (1 if primaries else 0)
    waves: list[dict[str, Any]] = [{"wave": k, "members": []} for k in range(wave_count)]
    for set_name in sorted(secondary_waves):
        planned = [(k, host) for k, host in enumerate(secondary_waves[set_name])]
        if set_name in primaries:
            planned.append((primary_wave, primaries[set_name]))
        for k, host in planned:
            hosts[host]["wave"] = k
            item = {"host": host, "set_name": set_name, "member": hosts[host]["member"], "role": hosts[host]["role"]}
            waves[k]["members"].append(item)
            sets[set_name]["waves"].append({"wave": k, **item})

    lines = [
        f"wave {w['wave']}: " + ", ".join(f"{m['set_name']}/{m['member']} ({m['host']}, {m['role']})" for m in w["members"])
        for w in waves
    ]
    lines += [f"skip {h} ({e['set_name']}/{e['member']}): {e['reason']}" for h, e in sorted(hosts.items()) if e["action"] == "skip"]
    lines += [f"not in play: {s}/{n}" for s, info in sorted(sets.items()) for n in info["not_in_play"]]
    lines += [
        f"PROBLEM {p['set_name'] or '-'}/{p['member'] or '-'} ({p['host'] or '-'}): {p['problem']}" for p in problems
    ]
    return {
        "ok": not problems,
        "problems": problems,
        "wave_count": wave_count,
        "waves": waves,
        "hosts": hosts,
        "sets": sets,
        "lines": lines,
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_waves": fleet_waves}
