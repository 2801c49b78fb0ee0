# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host records of a replica set as mongod_fleet's discover.yml gives them to the fleet_waves filter."""

from __future__ import annotations

from typing import Any


def member(name: str, state: str = "SECONDARY", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "state_str": state,
        "health": 1,
        "lag_seconds": 0,
        "priority": 1,
        "votes": 1,
        "hidden": False,
        "arbiter_only": False,
        **extra,
    }


def replset(set_name: str, hosts: list[str], primary: int = 0, term: int = 3, **over: Any) -> list[dict[str, Any]]:
    """One record per host of a healthy set; every record holds the primary's view."""
    names = [f"{h}:27017" for h in hosts]
    members = [member(n, "PRIMARY" if i == primary else "SECONDARY") for i, n in enumerate(names)]
    return [
        {
            "host": h,
            "ok": True,
            "set_name": set_name,
            "member": names[i],
            "primary": names[primary],
            "term": term,
            "members": members,
            "majority_survives_one_down": True,
            "selected": True,
            "problems": [],
            **over,
        }
        for i, h in enumerate(hosts)
    ]
