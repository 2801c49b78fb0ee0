"""Write concerns as mongod 7.0 resolves and checks them (write_concern.cpp, repl_set_config.cpp).

The default is the implicit one of MongoDB 5.0+: ``{w: "majority"}`` on a replica set, unless arbiters make a
majority of data-bearing voters impossible (then ``{w: 1}``); ``{w: 1}`` on a standalone. A tag mode must be
in ``settings.getLastErrorModes`` (else 79 UnknownReplWriteConcern) and a numeric ``w`` cannot exceed the
data-bearing members (else 100 UnsatisfiableWriteConcern); both fail at once, as a writeConcernError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import code_name

if TYPE_CHECKING:
    from .replset import ReplicaSet


def implicit_default(repl: ReplicaSet | None) -> dict[str, Any]:
    """ReadWriteConcernDefaults' implicit default write concern."""
    if repl is None or repl.config is None:
        return {"w": 1, "wtimeout": 0}
    voters = repl.voters()
    arbiters = [m for m in repl.members() if m["arbiterOnly"]]
    data_bearing_voters = [m for m in voters if not m["arbiterOnly"]]
    if arbiters and len(data_bearing_voters) <= len(voters) // 2:
        return {"w": 1, "wtimeout": 0}
    return {"w": "majority", "wtimeout": 0}


def resolve(explicit: Any, repl: ReplicaSet | None) -> dict[str, Any]:
    """The write concern a command runs with, and its provenance (errInfo.writeConcern.provenance)."""
    if isinstance(explicit, dict) and explicit:
        return {**explicit, "provenance": "clientSupplied"}
    return {**implicit_default(repl), "provenance": "implicitDefault"}


def write_concern_error(code: int, errmsg: str, write_concern: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": code,
        "codeName": code_name(code),
        "errmsg": errmsg,
        "errInfo": {"writeConcern": dict(write_concern)},
    }


def unsatisfiable_error(repl: ReplicaSet, write_concern: dict[str, Any]) -> dict[str, Any] | None:
    """ReplSetConfig::checkIfWriteConcernCanBeSatisfied (lock held): a writeConcernError, or None."""
    if repl.config is None:
        return None
    w = write_concern.get("w", 1)
    data_bearing = [m for m in repl.members() if not m["arbiterOnly"]]
    if isinstance(w, str) and w != "majority":
        mode = repl.settings.get("getLastErrorModes", {}).get(w)
        if mode is None:
            return write_concern_error(
                79, f"No write concern mode named '{w}' found in replica set configuration", write_concern
            )
        for tag, needed in mode.items():
            values = {m["tags"][tag] for m in data_bearing if tag in m.get("tags", {})}
            if len(values) < int(needed):
                return write_concern_error(100, f'Not enough nodes match write concern mode "{w}"', write_concern)
        return None
    if isinstance(w, int | float) and not isinstance(w, bool) and int(w) > len(data_bearing):
        return write_concern_error(100, "Not enough data-bearing nodes", write_concern)
    return None
