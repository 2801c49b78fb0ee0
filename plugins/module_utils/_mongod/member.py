# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Talk to one local replica-set member with pymongo (direct connection, never discovery).

Shared by ``mongod_member_info`` (read-only) and ``mongod_member_stepdown``. Every pymongo
failure leaves ``command`` as a typed ``MongodError`` (unreachable, authentication failed, not
a replica set, command failed). Error texts come from pymongo, which names host and port but
never the password.
"""

from __future__ import annotations

import datetime
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    MongodAuthError,
    MongodCommandError,
    MongodError,
    MongodNotReplicaSetError,
    MongodUnreachableError,
)

with PYMONGO.importing():
    from pymongo import MongoClient
    from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

HEALTHY_STATES = ("PRIMARY", "SECONDARY")
#: replSetGetStatus on a mongod that is not (yet) a replica set member
NOT_A_REPLICA_SET_CODES = (76, 94)  # NoReplicationEnabled, NotYetInitialized
AUTHENTICATION_FAILED = 18

#: how the mongod_member_* modules reach one mongod (doc fragment kmipops.psmdb.mongod_connection):
#: community.mongodb's names, today's first names as aliases
MEMBER_CONNECTION_ARGSPEC: dict[str, dict[str, Any]] = {
    "login_host": {"type": "str", "default": "localhost", "aliases": ["host"]},
    "login_port": {"type": "int", "default": 27017, "aliases": ["port"]},
    "login_user": {"type": "str", "aliases": ["username"]},
    "login_password": {"type": "str", "no_log": True, "aliases": ["password"]},
    "login_database": {"type": "str", "default": "admin", "aliases": ["auth_source"]},
    "tls": {"type": "bool", "default": False},
    "tls_ca_file": {"type": "path"},
    "tls_certificate_key_file": {"type": "path"},
    "tls_certificate_key_file_password": {"type": "str", "no_log": True},
    "tls_allow_invalid_hostnames": {"type": "bool", "default": False},
    "timeout_ms": {"type": "int", "default": 5000},
}


def member_address(params: dict[str, Any]) -> str:
    """``host:port`` of the member the options point at, for messages."""
    host = params["login_host"]
    return f"[{host}]:{params['login_port']}" if ":" in host else f"{host}:{params['login_port']}"


def connect(params: dict[str, Any]) -> Any:
    """A client bound to exactly this member (``directConnection``), lazy until first use."""
    PYMONGO.require()
    kwargs: dict[str, Any] = {
        "host": params["login_host"],
        "port": params["login_port"],
        "directConnection": True,
        "serverSelectionTimeoutMS": params["timeout_ms"],
        "connectTimeoutMS": params["timeout_ms"],
        "socketTimeoutMS": max(params["timeout_ms"], 30000),
        "appname": "kmipops.psmdb",
    }
    if params.get("login_user"):
        kwargs.update(
            username=params["login_user"], password=params.get("login_password"), authSource=params["login_database"]
        )
    tls_files = params.get("tls_ca_file") or params.get("tls_certificate_key_file")
    if params.get("tls") or tls_files:
        kwargs["tls"] = True
        if params.get("tls_ca_file"):
            kwargs["tlsCAFile"] = params["tls_ca_file"]
        if params.get("tls_certificate_key_file"):
            kwargs["tlsCertificateKeyFile"] = params["tls_certificate_key_file"]
        if params.get("tls_certificate_key_file_password"):
            kwargs["tlsCertificateKeyFilePassword"] = params["tls_certificate_key_file_password"]
        if params.get("tls_allow_invalid_hostnames"):
            kwargs["tlsAllowInvalidHostnames"] = True
    return MongoClient(**kwargs)


def connection_warnings(params: dict[str, Any]) -> list[str]:
    """What the operator must hear about the connection options (module.warn each)."""
    if params.get("tls_allow_invalid_hostnames"):
        return [
            f"tls_allow_invalid_hostnames: the certificate of {member_address(params)} is not checked "
            "against the host name (the chain still is)"
        ]
    return []


def command(client: Any, member: str, name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``client.admin.command(name, ...)``; a failure is raised as a typed ``MongodError``."""
    try:
        return client.admin.command(name, *args, **kwargs)
    except PyMongoError as exc:
        raise classify(exc, member, name) from None


def classify(exc: Exception, member: str, name: str) -> MongodError:
    """The typed error for a pymongo exception raised by command ``name``."""
    if isinstance(exc, OperationFailure):
        details = exc.details or {}
        message = str(details.get("errmsg") or exc)
        if exc.code == AUTHENTICATION_FAILED:
            return MongodAuthError(member, message)
        if exc.code in NOT_A_REPLICA_SET_CODES:
            return MongodNotReplicaSetError(member, f"{name}: {message}")
        return MongodCommandError(member, name, message, exc.code, str(details.get("codeName") or ""))
    if isinstance(exc, ConnectionFailure):
        # pymongo appends its whole topology description: the first part says what happened
        return MongodUnreachableError(member, str(exc).split(", Topology Description:", maxsplit=1)[0])
    return MongodCommandError(member, name, f"{type(exc).__name__}: {exc}")


def member_status(client: Any, member: str) -> dict[str, Any]:
    """What the rolling tasks need to know about this member and its replica set."""
    hello = command(client, member, "hello")
    result: dict[str, Any] = {
        "reachable": True,
        "is_primary": bool(hello.get("isWritablePrimary")),
        "set_name": hello.get("setName"),
        "replica_set": False,
        "state": None,
        "state_str": None,
        "primary": hello.get("primary"),
        "members": [],
        "majority_healthy": False,
        "healthy": False,
        **_process(client, member),
    }
    try:
        status = command(client, member, "replSetGetStatus")
    except MongodNotReplicaSetError:
        return result
    members = status.get("members") or []
    primary_optime = next((m.get("optimeDate") for m in members if m.get("stateStr") == "PRIMARY"), None)
    summary = [_member_summary(m, primary_optime) for m in members]
    healthy = sum(1 for m in summary if m["health"] == 1 and m["state_str"] in (*HEALTHY_STATES, "ARBITER"))
    result.update(
        replica_set=True,
        set_name=status.get("set", result["set_name"]),
        state=status.get("myState"),
        state_str=_state_str(status.get("myState")),
        members=summary,
        majority_healthy=bool(summary) and healthy > len(summary) // 2,
    )
    result["healthy"] = result["state_str"] in HEALTHY_STATES
    return result


def _process(client: Any, member: str) -> dict[str, Any]:
    """The mongod process that answered (serverStatus): lets the restart tasks check that the
    host they are about to restart runs this very mongod. None when the user may not ask."""
    try:
        server = command(client, member, "serverStatus")
    except MongodCommandError:
        return {"pid": None, "process_host": None, "uptime_seconds": None}
    pid = server.get("pid")
    uptime = server.get("uptime")
    return {
        "pid": int(pid) if pid is not None else None,
        "process_host": server.get("host"),
        "uptime_seconds": float(uptime) if uptime is not None else None,
    }


def _member_summary(member: dict[str, Any], primary_optime: Any) -> dict[str, Any]:
    lag: float | None = None
    optime = member.get("optimeDate")
    if isinstance(primary_optime, datetime.datetime) and isinstance(optime, datetime.datetime):
        lag = max((primary_optime - optime).total_seconds(), 0.0)
    return {
        "name": member.get("name"),
        "state_str": member.get("stateStr"),
        "health": int(member.get("health", 0)),
        "self": bool(member.get("self", False)),
        "optime_lag_seconds": lag,
    }


_STATES = {
    0: "STARTUP",
    1: "PRIMARY",
    2: "SECONDARY",
    3: "RECOVERING",
    5: "STARTUP2",
    6: "UNKNOWN",
    7: "ARBITER",
    8: "DOWN",
    9: "ROLLBACK",
    10: "REMOVED",
}


def _state_str(state: Any) -> str | None:
    return _STATES.get(state) if isinstance(state, int) else None
