# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_report
short_description: The report of a rolling operation over replica sets planned by fleet_waves
version_added: 0.1.0
description:
  - Takes the plan of P(kmipops.psmdb.fleet_waves#filter) and one result per inventory host, as the
    C(kmipops.psmdb.mongod_fleet) role records them, and returns the report - per set its outcome, the elections
    the operation caused (the set's C(term) after minus before) and the wave timeline; per member its status,
    times and the caller's details (for a rotation the old and new key ids and the time of each step).
  - The caller's details are copied as they are; they must hold no secret.
author:
  - kmipops.psmdb contributors (@kmipops)
options:
  _input:
    description:
      - One result per inventory host - C(host), C(status) (C(done), C(failed), C(skipped), C(halted),
        C(lost) when the host left the play, C(planned) in check mode), C(reason), C(wave), C(started_at),
        C(ended_at) (epoch seconds), C(details) (dict, with an optional C(summary) sentence).
    type: list
    elements: dict
    required: true
  plan:
    description: The plan P(kmipops.psmdb.fleet_waves#filter) returned.
    type: dict
    required: true
  terms_after:
    description: The term of each set at the end (set name to term); elections are counted from it.
    type: dict
    default: {}
  operation:
    description: The operation's name, shown in the report.
    type: str
    default: rolling operation
  started_at:
    description: When the operation started (epoch seconds).
    type: float
  ended_at:
    description: When it ended (epoch seconds).
    type: float
  halted:
    description: Halted sets, set name to the reason.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Build the report
  ansible.builtin.set_fact:
    fleet_report: >-
      {{ ansible_play_hosts_all | map('extract', hostvars, 'mongod_fleet_result') | list
         | kmipops.psmdb.fleet_report(plan=fleet_plan, operation='master key rotation') }}
  run_once: true
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    outcome:
      description: C(complete) (every planned member done), C(halted) (a set stopped after a failure),
        C(preflight_failed) (nothing was touched), C(check_mode) (nothing was touched), C(incomplete) (members
        left alone - no electable secondary, not readable - or not in play), C(nothing_to_do) (every member left
        out on purpose, for example by key age).
      type: str
    sets:
      description: Per set C(status), C(halted_reason), C(term_before), C(term_after), C(elections), C(timeline)
        (per wave C(wave), C(member), C(host), C(role), C(status), C(seconds)), C(not_in_play).
      type: dict
    members:
      description:
        - Per inventory host its result - C(set_name), C(member), C(role) and C(wave) (as worked on), C(status),
          C(reason), C(started_at), C(ended_at), C(seconds), C(details); C(planned) (C(wave), C(role)) when the
          primary moved and they differ from the plan; on a failure C(error_kind), and C(member_stopped) when its
          mongod was seen not running (C(service), C(waited_seconds), C(mongod_last_run), C(mongod_log),
          C(journal)).
      type: dict
    lines:
      description: A readable summary, one line per set and per member.
      type: list
      elements: str
"""

import datetime
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def _iso(epoch: Any) -> str | None:
    if epoch in (None, ""):
        return None
    return datetime.datetime.fromtimestamp(float(epoch), tz=datetime.UTC).isoformat(timespec="seconds")


def _seconds(start: Any, end: Any) -> float | None:
    if start in (None, "") or end in (None, ""):
        return None
    return round(float(end) - float(start), 1)


def fleet_report(
    results: list[Any],
    plan: Mapping[str, Any],
    terms_after: Mapping[str, Any] | None = None,
    operation: str = "rolling operation",
    started_at: float | None = None,
    ended_at: float | None = None,
    halted: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if not isinstance(plan, Mapping) or "hosts" not in plan:
        raise AnsibleFilterError("fleet_report: plan must be what kmipops.psmdb.fleet_waves returned")
    terms_after = dict(terms_after or {})
    halted = dict(halted or {})
    members: dict[str, dict[str, Any]] = {}
    for result in results or []:
        if not isinstance(result, Mapping) or not result.get("host"):
            continue
        host = str(result["host"])
        planned = plan["hosts"].get(host, {})
        status = result.get("status", "not_run")
        reason = result.get("reason")
        if status == "pending":
            status, reason = "lost", reason or "it never finished (the host left the play)"
        entry = {
            "host": host,
            "set_name": result.get("set_name", planned.get("set_name")),
            "member": result.get("member", planned.get("member")),
            "role": result.get("role", planned.get("role")),
            "wave": result.get("wave", planned.get("wave")),
            "status": status,
            "reason": reason,
            "started_at": _iso(result.get("started_at")),
            "ended_at": _iso(result.get("ended_at")),
            "seconds": _seconds(result.get("started_at"), result.get("ended_at")),
            "details": dict(result.get("details") or {}),
        }
        if result.get("planned"):
            # the primary moved: the wave and role it was planned with (fleet_turn)
            entry["planned"] = dict(result["planned"])
        if result.get("error_kind"):
            entry["error_kind"] = result["error_kind"]
        if result.get("member_stopped"):
            # its mongod was seen not running while the set was awaited: unit state, last lines (no secrets)
            entry["member_stopped"] = dict(result["member_stopped"])
        members[host] = entry
    for host, planned in plan["hosts"].items():
        members.setdefault(
            host,
            {
                "host": host,
                "set_name": planned.get("set_name"),
                "member": planned.get("member"),
                "role": planned.get("role"),
                "wave": planned.get("wave"),
                "status": "lost" if planned.get("action") == "work" else "skipped",
                "reason": planned.get("reason") or "no result recorded (the host left the play)",
                "started_at": None,
                "ended_at": None,
                "seconds": None,
                "details": {},
            },
        )

    sets: dict[str, dict[str, Any]] = {}
    for set_name, info in plan.get("sets", {}).items():
        timeline = []
        for step in info.get("waves", []):
            entry = members.get(step["host"], {})
            # the wave and role it was worked on in (they differ from the plan when the primary moved)
            timeline.append(
                {
                    "wave": entry.get("wave", step["wave"]),
                    "member": step["member"],
                    "host": step["host"],
                    "role": entry.get("role", step["role"]),
                    "status": entry.get("status"),
                    "started_at": entry.get("started_at"),
                    "seconds": entry.get("seconds"),
                }
            )
        timeline.sort(key=lambda t: (t["wave"] is None, t["wave"] if t["wave"] is not None else 0))
        statuses = [t["status"] for t in timeline]
        skipped = [m for m in members.values() if m["set_name"] == set_name and m["status"] == "skipped"]
        # members left out on purpose (their key is recent, arbiters) do not make a set incomplete
        left_alone = [
            m for m in skipped if plan["hosts"].get(m["host"], {}).get("skip_kind") not in ("not_selected", "arbiter")
        ]
        if set_name in halted or "failed" in statuses or "lost" in statuses:
            status = "halted"
        elif plan.get("ok") is False:
            status = "preflight_failed"
        elif any(s == "planned" for s in statuses):
            status = "planned"
        elif left_alone or info.get("not_in_play") or any(s != "done" for s in statuses):
            status = "incomplete"
        elif not timeline:
            status = "nothing_to_do"
        else:
            status = "complete"
        reason = halted.get(set_name)
        if status == "halted" and not reason:
            first = next(
                (m for m in members.values() if m["set_name"] == set_name and m["status"] in ("failed", "lost")), None
            )
            reason = f"{first['member']} ({first['host']}) {first['status']}: {first['reason']}" if first else "halted"
        term_before = info.get("term")
        term_after = terms_after.get(set_name)
        elections = None
        if term_before is not None and term_after is not None:
            elections = int(term_after) - int(term_before)
        sets[set_name] = {
            "status": status,
            "halted_reason": reason if status == "halted" else None,
            "term_before": term_before,
            "term_after": term_after,
            "elections": elections,
            "timeline": timeline,
            "skipped": [{"member": m["member"], "host": m["host"], "reason": m["reason"]} for m in skipped],
            "not_in_play": list(info.get("not_in_play", [])),
        }

    set_statuses = [s["status"] for s in sets.values()]
    if plan.get("ok") is False:
        outcome = "preflight_failed"
    elif "halted" in set_statuses:
        outcome = "halted"
    elif "planned" in set_statuses:
        outcome = "check_mode"
    elif "incomplete" in set_statuses:
        outcome = "incomplete"
    elif set_statuses and all(s == "nothing_to_do" for s in set_statuses):
        outcome = "nothing_to_do"
    else:
        outcome = "complete"

    lines = [
        f"{operation}: {outcome}"
        + (f" in {_seconds(started_at, ended_at)} s" if started_at and ended_at else "")
        + f", {plan.get('wave_count', 0)} waves, {len(sets)} replica sets"
    ]
    for problem in plan.get("problems", []):
        lines.append(
            f"PROBLEM {problem.get('set_name') or '-'}/{problem.get('member') or '-'} "
            f"({problem.get('host') or '-'}): {problem.get('problem')}"
        )
    for set_name, info in sorted(sets.items()):
        waves = "; ".join(
            f"wave {t['wave']} {t['member']} {t['status']}" + (f" {t['seconds']} s" if t["seconds"] is not None else "")
            for t in info["timeline"]
        )
        elections = "?" if info["elections"] is None else info["elections"]
        lines.append(
            f"set {set_name}: {info['status']}, elections {elections}"
            + (f", halted: {info['halted_reason']}" if info["halted_reason"] else "")
            + (f" | {waves}" if waves else "")
        )
    for host, entry in sorted(members.items(), key=lambda item: (str(item[1]["set_name"]), str(item[1]["member"]))):
        summary = entry["details"].get("summary")
        lines.append(
            f"  {entry['set_name']}/{entry['member']} ({host}, {entry['role']}): {entry['status']}"
            + (f" - {summary}" if summary else "")
            + (f" - {entry['reason']}" if entry["reason"] else "")
        )
    return {
        "operation": operation,
        "outcome": outcome,
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "seconds": _seconds(started_at, ended_at),
        "wave_count": plan.get("wave_count"),
        "waves": plan.get("waves"),
        "problems": list(plan.get("problems", [])),
        "sets": sets,
        "members": members,
        "lines": lines,
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_report": fleet_report}
