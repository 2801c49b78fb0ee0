# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_key, kmip_key_info and kmip_server_info against real PyKMIP servers on loopback.

Each test runs ONE playbook of several tasks (a module start costs seconds on the shared
machine: PyKMIP imports SQLAlchemy), then checks the outcome on the server itself: through
the server's SQLite database or a separate PyKMIP client.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import yaml
from kmip.core import enums
from kmip.pie import objects as pie_objects

from kmiplab.client import key_state, register_aes_key

# KMIP State enumeration values as stored in PyKMIP's database
STATE_ACTIVE = enums.State.ACTIVE.value
STATE_DEACTIVATED = enums.State.DEACTIVATED.value

# A silent port must fail within this: well below PyKMIP's hard 30 s default, with room for a
# loaded 2-core machine. The module measures it around the attempt (elapsed_ms).
TIMEOUT_MS = 2000
TIMEOUT_BOUND_MS = 15000
# For the servers that do answer: on the shared 2-core machine (load 40+ seen) a PyKMIP server
# has needed more than mongod's default 5 s for one exchange; a slow answer is not under test here.
PATIENT_MS = 60000
# Each module start imports PyKMIP (and SQLAlchemy): minutes per task under that load.
PLAY_TIMEOUT_S = 2400


def playbook(tasks: list[dict[str, Any]], module_defaults: dict[str, Any] | None = None) -> str:
    play: dict[str, Any] = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if module_defaults:
        play["module_defaults"] = {"group/kmipops.psmdb.kmip": module_defaults}
    return yaml.safe_dump([play], sort_keys=False)


def task(name: str, module: str, args: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    return {"name": name, f"kmipops.psmdb.{module}": args, **keywords}


def db_key(server: Any, uid: str) -> tuple[bytes, int, str] | None:
    """(key bytes, KMIP state, owner) straight from the PyKMIP server's database."""
    with sqlite3.connect(server.database_path) as db:
        row = db.execute(
            "SELECT m.value, c.state, m.owner FROM managed_objects m JOIN crypto_objects c ON c.uid = m.uid "
            "WHERE m.uid = ?",
            (int(uid),),
        ).fetchone()
    return None if row is None else (bytes(row[0]), int(row[1]), str(row[2]))


def db_uids_named(server: Any, name: str) -> list[str]:
    """Live objects with this Name. PyKMIP's Destroy is a bulk DELETE that skips the ORM cascade,
    so a destroyed object's Name row stays behind: only names of existing objects count."""
    with sqlite3.connect(server.database_path) as db:
        rows = db.execute(
            "SELECT n.mo_uid FROM managed_object_names n JOIN managed_objects m ON m.uid = n.mo_uid WHERE n.name = ?",
            (name,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- kmip_key lifecycle, idempotence, check mode, and no secret in output ------------------------------


def test_kmip_key_lifecycle_without_leaking_secrets(run_playbook, kmip_options, kmip_server, pki) -> None:
    name = unique_name("lifecycle")
    client = pki.encrypted_client  # a password-protected key, as many mongod hosts have
    options = kmip_options(
        client_certificate_file=str(client.pem),
        client_certificate_password=client.password,
        connect_timeout_ms=PATIENT_MS,
    )
    wrong_password = "wrong-" + secrets.token_hex(6)
    create = playbook(
        [
            task("present check", "kmip_key", {"name": name}, check_mode=True),
            task("present", "kmip_key", {"name": name}),
            task("present again check", "kmip_key", {"name": name}, check_mode=True),
            task("present again", "kmip_key", {"name": name}),
            task("info", "kmip_key_info", {"names": [name], "key_identifiers": ["999999"]}),
            task(
                "wrong password",
                "kmip_key",
                {"name": name, "client_certificate_password": wrong_password},
                ignore_errors=True,
            ),
        ],
        module_defaults=options,
    )
    result = run_playbook(create, diff=True, verbosity=3, timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()

    predicted = result.task("present check").result
    assert result.task("present check").changed
    assert predicted["key_identifier"] is None and predicted["state"] == "Active"
    created = result.task("present").result
    assert result.task("present").changed
    uid = created["key_identifier"]
    assert created["state"] == "Active" and created["algorithm"] == "AES" and created["length"] == 256
    assert created["diff"] == {"before": {}, "after": {"key_identifier": uid, "name": name, "state": "Active"}}
    assert created["operations"] == ["Locate", "Register", "Activate"]
    for again in ("present again check", "present again"):
        assert not result.task(again).changed, again
        assert result.task(again).result["key_identifier"] == uid
    assert result.task("present again").result["operations"] == ["Locate", "Get Attributes"]

    info = result.task("info").result
    assert [k["key_identifier"] for k in info["keys"]] == [uid]
    key = info["keys"][0]
    assert key["names"] == [name] and key["state"] == "Active" and key["usable_by_mongod"] is True
    assert key["usage_mask"] == ["Encrypt", "Decrypt"] and key["object_type"] == "Symmetric Key"
    assert info["not_found"] == [{"key_identifier": "999999"}]

    failed = result.task("wrong password")
    assert failed.failed and failed.result["error_kind"] == "invalid_option"
    assert "client_certificate_password" in failed.result["msg"]

    stored = db_key(kmip_server, uid)
    assert stored is not None, "the key is not in the server's database"
    key_bytes, state, owner = stored
    assert state == STATE_ACTIVE and len(key_bytes) == 32 and owner == client.cn
    assert db_uids_named(kmip_server, name) == [uid]

    output = result.stdout + result.stderr
    for secret in (client.password, wrong_password, key_bytes.hex(), key_bytes.hex().upper()):
        assert secret not in output
    assert repr(key_bytes)[2:-1] not in output

    retire = playbook(
        [
            task("deactivate check", "kmip_key", {"key_identifier": uid, "state": "deactivated"}, check_mode=True),
            task("deactivate", "kmip_key", {"key_identifier": uid, "state": "deactivated"}),
            task("deactivate again", "kmip_key", {"key_identifier": uid, "state": "deactivated"}),
            task("present refuses", "kmip_key", {"key_identifier": uid}, ignore_errors=True),
            task("absent check", "kmip_key", {"name": name, "state": "absent"}, check_mode=True),
            task("absent", "kmip_key", {"name": name, "state": "absent"}),
            task("absent again", "kmip_key", {"name": name, "state": "absent"}),
        ],
        module_defaults=options,
    )
    result = run_playbook(retire, diff=True, timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()
    assert result.task("deactivate check").changed
    assert result.task("deactivate").changed
    assert result.task("deactivate").result["diff"]["after"]["state"] == "Deactivated"
    assert not result.task("deactivate again").changed
    refused = result.task("present refuses").result
    assert refused["error_kind"] == "wrong_key_state" and "Deactivated" in refused["msg"]
    assert result.task("absent check").changed
    assert result.task("absent").changed and result.task("absent").result["state"] == "Destroyed"
    assert not result.task("absent again").changed
    assert db_key(kmip_server, uid) is None
    assert db_uids_named(kmip_server, name) == []


# -- keys mongod could not use --------------------------------------------------------------------------


def test_kmip_key_refuses_keys_mongod_cannot_use(run_playbook, kmip_options, kmip_server, lab_kmip) -> None:
    with lab_kmip() as kmip:  # mongod1, the identity the modules use below
        aes128 = str(
            kmip.register(pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, secrets.token_bytes(16)))
        )
        kmip.activate(aes128)
        deactivated = register_aes_key(kmip)
        kmip.activate(deactivated)
        kmip.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, deactivated)
        active = register_aes_key(kmip)
        kmip.activate(active)
        pre_active = register_aes_key(kmip)
    tasks = [
        task("aes128", "kmip_key", {"key_identifier": aes128}, ignore_errors=True),
        task("deactivated", "kmip_key", {"key_identifier": deactivated}, ignore_errors=True),
        task("unknown", "kmip_key", {"key_identifier": "987654"}, ignore_errors=True),
        task("absent active", "kmip_key", {"key_identifier": active, "state": "absent"}, ignore_errors=True),
        task("activate pre-active", "kmip_key", {"key_identifier": pre_active}),
    ]
    result = run_playbook(
        playbook(tasks, module_defaults=kmip_options(connect_timeout_ms=PATIENT_MS)), timeout=PLAY_TIMEOUT_S
    )
    assert result.rc == 0, result.explain()
    expected = {
        "aes128": ("wrong_key_type", "AES-128"),
        "deactivated": ("wrong_key_state", "Deactivated"),
        "unknown": ("not_found", "987654"),
        "absent active": ("wrong_key_state", "force: true"),
    }
    for name, (kind, text) in expected.items():
        outcome = result.task(name)
        assert outcome.failed, name
        assert outcome.result["error_kind"] == kind, outcome.result["msg"]
        assert text in outcome.result["msg"] and kmip_server.address in outcome.result["msg"]
    assert result.task("activate pre-active").changed
    with lab_kmip() as kmip:
        assert key_state(kmip, aes128) == "ACTIVE"
        assert key_state(kmip, deactivated) == "DEACTIVATED"
        assert key_state(kmip, active) == "ACTIVE"
        assert key_state(kmip, pre_active) == "ACTIVE"


# -- bad input: a clear error naming the option, nothing changed ------------------------------------------


def test_bad_input_fails_before_anything_changes(run_playbook, kmip_options, kmip_server, pki, tmp_path) -> None:
    name = unique_name("never")
    unreadable = tmp_path / "missing-ca.pem"
    cases = {
        "timeout below 1000": ({"connect_timeout_ms": 999}, "connect_timeout_ms"),
        "negative retries": ({"connect_retries": -1}, "connect_retries"),
        "port out of range": ({"port": 70000}, "port"),
        "empty server name": ({"server_name": [""]}, "server_name"),
        "spaced server name": ({"server_name": [kmip_server.address + " "]}, "server_name"),
        "missing CA": ({"server_ca_file": str(unreadable)}, "server_ca_file"),
        "PEM without key": (
            {"client_certificate_file": str(pki.bad.client_without_key.pem)},
            "client_certificate_file",
        ),
    }
    tasks = [
        task(label, "kmip_key", {"name": name, **args}, ignore_errors=True) for label, (args, _option) in cases.items()
    ]
    result = run_playbook(playbook(tasks, module_defaults=kmip_options()), timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()
    for label, (_args, option) in cases.items():
        outcome = result.task(label)
        assert outcome.failed, label
        assert outcome.result["error_kind"] == "invalid_option", outcome.result["msg"]
        assert outcome.result["msg"].startswith(option + ":"), outcome.result["msg"]
    assert db_uids_named(kmip_server, name) == []


# -- kmip_server_info -----------------------------------------------------------------------------------


def test_server_info_reports_each_failure_precisely(
    run_playbook,
    kmip_options,
    kmip_server,
    kmip_server_wrong_host,
    silent_port,
    plain_tcp_port,
    closed_address,
    lab_kmip,
    pki,
    tmp_path,
) -> None:
    with lab_kmip() as kmip:
        active = register_aes_key(kmip)
        kmip.activate(active)
        pre_active = register_aes_key(kmip)
    good = kmip_options(connect_timeout_ms=PATIENT_MS)
    conf = tmp_path / "mongod.conf"
    conf.write_text(
        yaml.safe_dump(
            {
                "storage": {"dbPath": str(tmp_path / "db")},
                "security": {
                    "enableEncryption": True,
                    "kmip": {
                        "serverName": f"{closed_address},{kmip_server.address}",
                        "port": good["port"],
                        "serverCAFile": good["server_ca_file"],
                        "clientCertificateFile": good["client_certificate_file"],
                        "keyIdentifier": active,
                        "connectTimeoutMS": PATIENT_MS,
                    },
                },
            }
        )
    )
    lenient = {"fail_on_problems": False}

    def info(label: str, servers: list[Any], client: str = "mongod1", **args: Any) -> dict[str, Any]:
        options = kmip_options(servers=servers, client=client, connect_timeout_ms=PATIENT_MS)
        options.update(args)
        return task(label, "kmip_server_info", {**options, **lenient})

    tasks = [
        task("from mongod.conf", "kmip_server_info", {"mongod_config": str(conf)}, check_mode=True),
        info("pre-active key", [kmip_server], key_identifier=pre_active),
        info("unknown key", [kmip_server], key_identifier="876543"),
        info("silent", [silent_port], connect_timeout_ms=TIMEOUT_MS),
        info("plain tcp", [plain_tcp_port]),
        info("other CA", [kmip_server], server_ca_file=str(pki.other_ca.cert)),
        info("wrong host", [kmip_server_wrong_host]),
        {
            "name": "expired client",
            "kmipops.psmdb.kmip_server_info": {
                **kmip_options(client_certificate_file=str(pki.bad.expired_client.pem), connect_timeout_ms=PATIENT_MS),
                **lenient,
            },
        },
        {
            "name": "no clientAuth",
            "kmipops.psmdb.kmip_server_info": {
                **kmip_options(
                    client_certificate_file=str(pki.bad.server_auth_only_client.pem), connect_timeout_ms=PATIENT_MS
                ),
                **lenient,
            },
        },
        task("strict", "kmip_server_info", kmip_options(servers=[closed_address]), ignore_errors=True),
    ]
    result = run_playbook(playbook(tasks), timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()

    # failover: the first server is down, mongod would select the second; the key is usable
    report = result.task("from mongod.conf").result
    assert report["ok"] is True, report["problems"]
    assert report["selected_server"] == kmip_server.endpoint
    first, second = report["servers"]
    assert first["error_kind"] == "connection_refused" and first["ok"] is False
    assert second["ok"] and second["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert second["certificate"]["chain_ok"] and second["certificate"]["hostname_match"]
    assert second["kmip"]["version_used"] == "1.0"
    assert second["kmip"]["psmdb_operations_missing"] == []
    assert second["kmip"]["discover_versions_supported"] is None  # not a KMIP 1.0 operation: not sent
    assert second["kmip"]["mongod_exchange"] == {
        "operation": "Get Attributes",
        "key_identifier": active,
        "result": "Success",
    }
    assert second["kmip"]["declined"] == [] and report["notes"] == []
    assert report["key"]["usable"] is True and report["key"]["key_format_type"] == "Raw"
    assert report["client_certificate"]["client_auth_eku"] is True
    assert report["settings"]["key_identifier"] == active
    assert [p["severity"] for p in report["problems"] if p["where"] == first["address"]] == ["warning"]

    pre = result.task("pre-active key").result
    assert pre["ok"] is False and pre["key"]["state"] == "Pre-Active" and pre["key"]["usable"] is False
    unknown = result.task("unknown key").result
    assert unknown["ok"] is False and unknown["key"]["exists"] is False

    silent = result.task("silent").result["servers"][0]
    assert silent["error_kind"] == "timeout"
    assert silent["elapsed_ms"] < TIMEOUT_BOUND_MS
    assert result.task("plain tcp").result["servers"][0]["error_kind"] == "not_kmip"

    other_ca = result.task("other CA").result["servers"][0]
    assert other_ca["error_kind"] == "tls_verify" and other_ca["certificate"]["verify_error"] == "unknown_ca"
    wrong_host = result.task("wrong host").result["servers"][0]
    assert wrong_host["error_kind"] == "tls_verify" and wrong_host["certificate"]["hostname_match"] is False

    expired = result.task("expired client").result
    assert expired["client_certificate"]["expired"] is True
    assert expired["servers"][0]["error_kind"] == "tls_rejected"
    assert any("expired" in p["message"] for p in expired["problems"] if p["where"] == "client_certificate_file")
    no_eku = result.task("no clientAuth").result
    assert no_eku["client_certificate"]["client_auth_eku"] is False
    assert no_eku["servers"][0]["error_kind"] == "tls_rejected"

    strict = result.task("strict")
    assert strict.failed and "mongod could not start" in strict.result["msg"]
    assert Path(conf).exists()
