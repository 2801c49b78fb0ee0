# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_turn
short_description: Which member of each replica set is worked on in a wave, from the plan and the live primaries
version_added: 0.1.0
description:
  - Takes the plan of P(kmipops.psmdb.fleet_waves#filter), the wave about to start, every host's result so far and
    what the members say of their set now, and returns the member of each set to work on in that wave.
  - The plan was made from the primaries at the start. A primary may move before the last wave - an election after a
    rotated secondary's restart, or an operator's step-down. Each wave is therefore re-derived from the live view,
    so that the member that is primary B(when the last wave comes) is the one stepped down, and nobody else is.
  - Per set, of the members still pending (planned to work, no result yet), in the order of the plan - in a wave
    before the last, the first one that is not the live primary (a planned primary that is now a secondary is worked
    on without a step-down; a planned secondary that is now the primary is deferred); none when only the live
    primary is left, which waits for the last wave. In the last wave, the member left - stepped down first when it
    is the primary then.
  - The live primary of a set is the one of the newest view (highest term) among the live reads of its members;
    without any, the plan's primary (the plan's order is kept).
author:
  - kmipops.psmdb contributors (@kmipops)
options:
  _input:
    description: The plan P(kmipops.psmdb.fleet_waves#filter) returned.
    type: dict
    required: true
  wave:
    description: The wave about to start (0-based).
    type: int
    required: true
  results:
    description:
      - Every host's result so far (C(host), C(status)); a host is pending while its status is C(pending).
    type: list
    elements: dict
    default: []
  live:
    description:
      - What the members said of their set at the start of the wave, one record per host that read it - C(host),
        C(ok), C(set_name), C(primary) (C(host:port)), C(term), as P(kmipops.psmdb.mongod_replset_info#module)
        returns them.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Work out the members of this wave from the live primaries
  ansible.builtin.set_fact:
    fleet_turn: >-
      {{ fleet_plan | kmipops.psmdb.fleet_turn(wave=wave, results=results, live=live_reads) }}
  run_once: true
"""

RETURN = r"""
_value:
  description: The members of the wave.
  type: dict
  contains:
    wave:
      description: The wave.
      type: int
    hosts:
      description:
        - Per inventory host worked on in this wave - C(set_name), C(member), C(role) (C(primary) or C(secondary),
          live), C(planned_role), C(planned_wave), C(moved) (the role or the wave differs from the plan).
      type: dict
    sets:
      description:
        - Per replica set - C(primary) (the live primary, or the plan's), C(primary_from) (C(live) or C(plan)),
          C(host) (worked on in this wave, or null), C(pending) (hosts still to work on, plan order), C(deferred)
          (a pending host planned as a secondary, left for the last wave because it is the primary now).
      type: dict
    lines:
      description: One line per set that changed from the plan (a moved primary, a deferred member).
      type: list
      elements: str
"""

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def _live_primary(live: list[Mapping[str, Any]], set_name: str) -> str | None:
    """The primary of the newest view (highest term) of the set among the live reads."""
    reads = [
        r
        for r in live
        if isinstance(r, Mapping) and r.get("ok", True) and r.get("set_name") == set_name and r.get("primary")
    ]
    if not reads:
        return None
    newest = max(reads, key=lambda r: int(r.get("term") if r.get("term") is not None else -1))
    return str(newest["primary"])


def fleet_turn(
    plan: Mapping[str, Any],
    wave: int,
    results: list[Mapping[str, Any]] | None = None,
    live: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    if not isinstance(plan, Mapping) or "sets" not in plan or "hosts" not in plan:
        raise AnsibleFilterError("fleet_turn: the input must be the plan kmipops.psmdb.fleet_waves returned")
    try:
        wave = int(wave)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"fleet_turn: wave must be a number, got {wave!r}") from None
    status = {str(r.get("host")): r.get("status") for r in results or [] if isinstance(r, Mapping)}
    last = wave >= int(plan.get("wave_count") or 0) - 1
    hosts: dict[str, dict[str, Any]] = {}
    sets: dict[str, dict[str, Any]] = {}
    lines: list[str] = []
    for set_name in sorted(plan["sets"]):
        info = plan["sets"][set_name]
        order = [step["host"] for step in sorted(info.get("waves", []), key=lambda step: step["wave"])]
        # no result yet counts as pending: the plan says it is to be worked on
        pending = [h for h in order if status.get(h, "pending") == "pending"]
        primary = _live_primary(list(live or []), set_name)
        primary_from = "live" if primary else "plan"
        primary = primary or info.get("primary")
        not_primary = [h for h in pending if plan["hosts"][h].get("member") != primary]
        chosen: str | None = None
        if not_primary:
            chosen = not_primary[0]
        elif pending and last:
            chosen = pending[0]
        # a planned secondary that is the primary now waits for the last wave (a planned primary waits anyway)
        deferred = [
            h
            for h in pending
            if h != chosen and plan["hosts"][h].get("member") == primary and plan["hosts"][h].get("role") != "primary"
        ]
        sets[set_name] = {
            "primary": primary,
            "primary_from": primary_from,
            "host": chosen,
            "pending": pending,
            "deferred": deferred,
        }
        if chosen is not None:
            planned = plan["hosts"][chosen]
            role = "primary" if planned.get("member") == primary else "secondary"
            moved = role != planned.get("role") or planned.get("wave") != wave
            hosts[chosen] = {
                "set_name": set_name,
                "member": planned.get("member"),
                "role": role,
                "planned_role": planned.get("role"),
                "planned_wave": planned.get("wave"),
                "moved": moved,
            }
            if role != planned.get("role"):
                lines.append(
                    f"wave {wave} {set_name}: {planned.get('member')} was planned as {planned.get('role')}, "
                    f"is {role} now (primary {primary})"
                    + ("; it is stepped down" if role == "primary" else "; no step-down")
                )
        for host in deferred:
            lines.append(
                f"wave {wave} {set_name}: {plan['hosts'][host].get('member')} is the primary now, deferred to the "
                "last wave"
            )
    return {"wave": wave, "hosts": hosts, "sets": sets, "lines": lines}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_turn": fleet_turn}
