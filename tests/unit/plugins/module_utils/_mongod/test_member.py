# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_mongod.member: the pymongo connection to exactly one member, and what it says about the set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mockupdb import MockupDB
from pymongo.errors import AutoReconnect, OperationFailure, ServerSelectionTimeoutError

from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod import member
from unit.utils.scripted_mongod import HOST, hello, scripted_member, serve, status

PARAMS: dict[str, Any] = {
    "login_host": "db1.example.net",
    "login_port": 27018,
    "login_user": None,
    "login_password": None,
    "login_database": "admin",
    "tls": False,
    "tls_ca_file": None,
    "tls_certificate_key_file": None,
    "tls_certificate_key_file_password": None,
    "tls_allow_invalid_hostnames": False,
    "timeout_ms": 2000,
}


@pytest.fixture
def mongo_client_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(member, "MongoClient", lambda **kwargs: captured.update(kwargs) or captured)
    return captured


def test_connects_directly_to_the_one_member(mongo_client_kwargs: dict[str, Any]) -> None:
    member.connect(PARAMS)
    assert mongo_client_kwargs["host"] == "db1.example.net" and mongo_client_kwargs["port"] == 27018
    assert mongo_client_kwargs["directConnection"] is True, "never discover the set: act on this member only"
    assert mongo_client_kwargs["serverSelectionTimeoutMS"] == 2000 and mongo_client_kwargs["connectTimeoutMS"] == 2000
    assert "username" not in mongo_client_kwargs and "tls" not in mongo_client_kwargs


def test_credentials_and_tls_files_are_passed_on(mongo_client_kwargs: dict[str, Any]) -> None:
    member.connect(
        {
            **PARAMS,
            "login_user": "admin",
            "login_password": "Sekr1t",
            "login_database": "users",
            "tls_ca_file": "/etc/ca.pem",
            "tls_certificate_key_file": "/etc/me.pem",
            "tls_certificate_key_file_password": "pem-pass",
        }
    )
    assert (mongo_client_kwargs["username"], mongo_client_kwargs["authSource"]) == ("admin", "users")
    assert mongo_client_kwargs["tls"] is True, "a TLS file implies TLS"
    assert mongo_client_kwargs["tlsCAFile"] == "/etc/ca.pem"
    assert mongo_client_kwargs["tlsCertificateKeyFile"] == "/etc/me.pem"
    assert "tlsAllowInvalidHostnames" not in mongo_client_kwargs, "the host name is checked unless asked"


def test_skipping_the_host_name_check_is_said() -> None:
    params = {"login_host": "db1", "login_port": 27017, "tls_allow_invalid_hostnames": False}
    assert member.connection_warnings(params) == []
    (warning,) = member.connection_warnings({**params, "tls_allow_invalid_hostnames": True})
    assert warning.startswith("tls_allow_invalid_hostnames:") and "db1:27017" in warning


@pytest.fixture
def scripted() -> Iterator[MockupDB]:
    with scripted_member() as server:
        yield server


def status_of(server: MockupDB) -> dict[str, Any]:
    client = member.connect({**PARAMS, "login_host": HOST, "login_port": server.port})
    try:
        return member.member_status(client, f"{HOST}:{server.port}")
    finally:
        client.close()


def test_member_status_summarises_the_set_as_the_member_sees_it(scripted: MockupDB) -> None:
    serve(scripted, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 4.0), ("ARBITER", 1, 0)], 2))
    result = status_of(scripted)
    assert (result["replica_set"], result["set_name"], result["state_str"], result["healthy"]) == (
        True,
        "rs0",
        "SECONDARY",
        True,
    )
    assert result["majority_healthy"] is True
    assert [m["optime_lag_seconds"] for m in result["members"]] == [0.0, 4.0, 0.0]


def test_a_standalone_is_reachable_but_not_a_replica_set(scripted: MockupDB) -> None:
    serve(scripted, hello(True, set_name=None), None)
    result = status_of(scripted)
    assert result["reachable"] and not result["replica_set"] and not result["healthy"]
    assert result["members"] == [] and result["pid"] == 4321


def failure(code: int, code_name: str, errmsg: str) -> OperationFailure:
    return OperationFailure(errmsg, code, {"ok": 0, "code": code, "codeName": code_name, "errmsg": errmsg})


@pytest.mark.parametrize(
    "exc, kind, words",
    [
        (failure(18, "AuthenticationFailed", "Authentication failed."), "auth_failed", "authentication failed"),
        (failure(76, "NoReplicationEnabled", "not running with --replSet"), "not_replica_set", "--replSet"),
        (failure(94, "NotYetInitialized", "no replset config has been received"), "not_replica_set", "no replset"),
        (failure(13, "Unauthorized", "not authorized on admin"), "command_failed", "(Unauthorized 13)"),
        (
            ServerSelectionTimeoutError("db1:27018: [Errno 111] Connection refused, Topology Description: <...>"),
            "unreachable",
            "Connection refused",
        ),
        (AutoReconnect("connection closed"), "unreachable", "connection closed"),
    ],
    ids=["auth", "no-replset", "not-initiated", "unauthorized", "refused", "reset"],
)
def test_pymongo_failures_become_typed_errors(exc: Exception, kind: str, words: str) -> None:
    error = member.classify(exc, "db1:27018", "replSetGetStatus")
    assert error.kind == kind and words in str(error) and str(error).startswith("mongod db1:27018: ")
    assert "Topology Description" not in str(error)


def test_ipv6_members_are_named_with_brackets() -> None:
    assert member.member_address({"login_host": "::1", "login_port": 27017}) == "[::1]:27017"
