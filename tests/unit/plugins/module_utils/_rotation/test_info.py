# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.info: the report of mongod_encryption_info, getCmdLineOpts masked, sources reconciled."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator

import pytest
from mockupdb import MockupDB, OpMsg

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import connect
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.info import (
    gather,
    mask_argv,
    mask_parsed,
    query_server,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_config import MemberConfig
from unit.utils.rotation_member import FakeMember, make_member, normal_start, rotation
from unit.utils.scripted_mongod import HOST, hello, scripted_member, serve

PASSWORD = "Dummy-Info-8"


@pytest.fixture
def member() -> Iterator[FakeMember]:
    created = make_member("2", rotated=True)
    created.write_log(normal_start(100, "1", created=True) + rotation(101, "1", "2"))
    yield created
    shutil.rmtree(created.root, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[MockupDB]:
    with scripted_member() as scripted:
        serve(scripted, hello(True, set_name=None), None)  # the handshake; tests script the rest
        yield scripted


def params(port: int) -> dict:
    return {
        "login_host": HOST,
        "login_port": port,
        "timeout_ms": 3000,
        "login_user": None,
        "login_password": None,
        "login_database": "admin",
        "tls": False,
    }


def cmdline(pid_password: str = PASSWORD) -> dict:
    return {
        "ok": 1,
        "argv": [
            "mongod",
            "-f",
            "/etc/mongod.conf",
            "--kmipClientCertificatePassword",
            pid_password,
            f"--tlsClusterPassword={pid_password}x",
        ],
        "parsed": {
            "config": "/etc/mongod.conf",
            "security": {"kmip": {"serverName": "k", "keyIdentifier": "2", "clientCertificatePassword": pid_password}},
            "net": {"tls": {"clusterPassword": pid_password + "x"}},
        },
    }


def test_argv_and_parsed_are_masked_and_the_values_collected() -> None:
    found: list[str] = []
    argv = mask_argv(cmdline()["argv"], found)
    assert argv[-3:] == ["--kmipClientCertificatePassword", "********", "--tlsClusterPassword=********"]
    parsed = mask_parsed(cmdline()["parsed"], found)
    assert parsed["security"]["kmip"]["clientCertificatePassword"] == "********"
    assert parsed["net"]["tls"]["clusterPassword"] == "********"
    assert PASSWORD not in json.dumps([argv, parsed]) and set(found) == {PASSWORD, PASSWORD + "x"}


def test_query_server_of_the_process_that_holds_the_lock(server: MockupDB) -> None:
    status = {
        "ok": 1,
        "pid": 4321,
        "encryptionAtRest": {"encryptionEnabled": True, "encryptionKeyId": {"kmip": {"keyId": "2"}}},
    }
    server.autoresponds(OpMsg("serverStatus"), status)
    server.autoresponds(OpMsg("getCmdLineOpts"), cmdline())
    secrets: list[str] = []
    client = connect(params(server.port))
    try:
        result = query_server(client, "m", 4321, secrets.append)
    finally:
        client.close()
    assert result["same_process"] is True and result["encryption_at_rest_supported"] is True
    assert result["command_line"]["key_identifier"] == "2" and PASSWORD in secrets
    assert PASSWORD not in json.dumps(result)


def test_query_server_ignores_another_process_and_a_build_without_encryption_status(server: MockupDB) -> None:
    server.autoresponds(OpMsg("serverStatus"), {"ok": 1, "pid": 99})
    server.autoresponds(OpMsg("getCmdLineOpts"), cmdline())
    client = connect(params(server.port))
    try:
        other = query_server(client, "m", 4321, lambda _s: None)
        same = query_server(client, "m", 99, lambda _s: None)
    finally:
        client.close()
    assert other["same_process"] is False and other["error_kind"] == "other_process" and other["command_line"] is None
    assert same["encryption_at_rest_supported"] is False and same["encryption_at_rest"] is None


def test_gather_a_stopped_member(member: FakeMember) -> None:
    member.write_config(key_identifier="1", password=PASSWORD)
    config = MemberConfig.read(str(member.config))
    report = gather(config, 1_000_000, query=lambda pid: pytest.fail("not running: nothing to ask"), query_kmip=False)
    assert report["running"] is False and report["server"]["queried"] is False
    assert report["key_identifier"] == "2" and report["key_identifier_sources"]["log"] == "2"
    assert report["key_identifier_sources"]["config"] == "1"
    assert any("keyIdentifier" in p and "refuses to start" in p for p in report["problems"])
    assert report["log"]["last_rotation"]["new_key_identifier"] == "2"
    assert report["configured"]["kmip"]["clientCertificatePassword"] == "********"
    assert PASSWORD not in json.dumps(report)


def test_gather_a_running_member_asks_it(member: FakeMember) -> None:
    config = MemberConfig.read(str(member.config))
    (member.db / "mongod.lock").write_text(f"{os.getpid()}\n")
    asked: list[int | None] = []

    def query(pid: int | None) -> dict:
        asked.append(pid)
        return {"queried": True, "encryption_at_rest_supported": False, "encryption_at_rest": None}

    with open(member.db / "mongod.lock", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        report = gather(config, 1_000_000, query=query, query_kmip=False)
    assert asked == [os.getpid()] and report["running"] is True
    assert report["member_state"]["state"] == "running"
    assert any("encryptionAtRest" in note for note in report["notes"])


def test_kmip_failures_are_results(member: FakeMember) -> None:
    config = MemberConfig.read(str(member.config))
    report = gather(config, 1_000_000, query=None, query_kmip=True)
    assert report["kmip_key"]["key_identifier"] == "2" and report["kmip_key"]["error_kind"] == "invalid_option"
    assert "server" not in report or report["server"] is None


def test_a_budget_must_be_positive(member: FakeMember) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        gather(MemberConfig.read(str(member.config)), 0, query=None, query_kmip=False)
    assert caught.value.option == "log_scan_bytes"
