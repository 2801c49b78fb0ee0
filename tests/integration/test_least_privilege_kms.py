# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection on a least-privilege KMS: one that grants what PSMDB sends and nothing else.

The KMS is a ``KmipPolicyProxy`` in front of the real PyKMIP server (see conftest): like a
HashiCorp Vault KMIP role with operation_register, operation_activate, operation_get and
operation_get_attributes, it refuses everything else (Query, Discover Versions, Locate...)
itself. The PSMDB emulator's own KMIP start-up runs through it first, to show that mongod works
there; then kmip_server_info, which must call that server usable, and the key modules through
the "PSMDB + key management" KMS.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import yaml
from kmip.core import enums

from kmiplab.client import key_state, register_aes_key
from kmiplab.policy_proxy import KmipPolicyProxy

_EMULATOR_ROOT = str(Path(__file__).resolve().parents[1] / "psmdb_emulator")
if _EMULATOR_ROOT not in sys.path:
    sys.path.insert(0, _EMULATOR_ROOT)

from psmdb_emulator.encryption import MasterKeyRotationCompleted, StartedStorage, start_storage  # noqa: E402
from psmdb_emulator.logv2 import Logger  # noqa: E402
from psmdb_emulator.options import parse_args  # noqa: E402

# A slow shared machine: bounds hangs, not a measurement (see test_kmip_modules.py).
PATIENT_MS = 60000
PLAY_TIMEOUT_S = 2400


def playbook(tasks: list[dict[str, Any]]) -> str:
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False)


def task(name: str, module: str, args: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    return {"name": name, f"kmipops.psmdb.{module}": args, **keywords}


def real_problems(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The problems, without the lab's own: its certificates are valid 30 days, so always 'expiring'."""
    return [p for p in result["problems"] if "expires in" not in p["message"]]


def mongod_conf(path: Path, proxy: KmipPolicyProxy, options: dict[str, Any], **kmip: Any) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "storage": {"dbPath": str(path.parent / "db")},
                "security": {
                    "enableEncryption": True,
                    "kmip": {
                        "serverName": proxy.address,
                        "port": options["port"],
                        "serverCAFile": options["server_ca_file"],
                        "clientCertificateFile": options["client_certificate_file"],
                        "connectTimeoutMS": PATIENT_MS,
                        **kmip,
                    },
                },
            }
        )
    )
    (path.parent / "db").mkdir(exist_ok=True)
    return path


def emulated_mongod_start(conf: Path, *flags: str) -> StartedStorage:
    """PSMDB's encryption start-up (the emulator's, in this process) with this mongod.conf."""
    logger = Logger(str(conf.parent / "mongod.log"))
    try:
        return start_storage(parse_args(["--config", str(conf), *flags]), logger)
    finally:
        logger.close()


def test_mongod_works_on_a_psmdb_only_kms_and_kmip_server_info_calls_it_usable(
    run_playbook, kmip_options, kms_psmdb_only, kmip_server, tmp_path
) -> None:
    proxy = kms_psmdb_only
    options = kmip_options(servers=[proxy], connect_timeout_ms=PATIENT_MS)
    conf = mongod_conf(tmp_path / "mongod.conf", proxy, options)

    # PSMDB's whole key life through the KMS: first start, restart, rotation, restart
    mark = proxy.mark()
    first_key = emulated_mongod_start(conf).key_id
    assert first_key is not None
    assert emulated_mongod_start(conf).key_id == first_key
    try:
        emulated_mongod_start(conf, "--kmipRotateMasterKey")
        raise AssertionError("the rotation did not complete")
    except MasterKeyRotationCompleted as rotated:
        new_key = rotated.new_key_id
    assert new_key != first_key and emulated_mongod_start(conf).key_id == new_key
    assert proxy.operations(mark) == [
        *("Register", "Activate"),  # first start
        *("Get Attributes", "Get"),  # restart
        *("Get", "Register", "Activate"),  # rotation: old key, new key
        *("Get Attributes", "Get"),  # restart on the new key
    ]
    assert proxy.operations(mark, allowed=False) == []

    mark, server_mark = proxy.mark(), kmip_server.log_offset()
    tasks = [
        # fail_on_problems is left at true: a refusal of Query must not fail the task
        task("with mongod.conf", "kmip_server_info", {"mongod_config": str(conf), "key_identifier": new_key}),
        task("no key", "kmip_server_info", options),
        task("KMIP 1.2", "kmip_server_info", {**options, "kmip_version": "1.2", "key_identifier": new_key}),
    ]
    result = run_playbook(playbook(tasks), timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()

    for name in ("with mongod.conf", "no key", "KMIP 1.2"):
        report = result.task(name).result
        assert report["ok"] is True and report["selected_server"] == proxy.endpoint, (name, report["problems"])
        server = report["servers"][0]
        assert server["ok"] is True and server["error"] is None, name
        assert server["kmip"]["operations"] is None and server["kmip"]["psmdb_operations_missing"] is None
        declined = server["kmip"]["declined"]
        assert {d["operation"] for d in declined} == (
            {"Query", "Discover Versions"} if name == "KMIP 1.2" else {"Query"}
        )
        assert {d["reason"] for d in declined} == {"Permission Denied"}
        notes = [n for n in report["notes"] if n["where"] == proxy.endpoint]
        assert any("declined Query (Permission Denied)" in n["message"] for n in notes), notes
        assert all("mongod is not affected" in n["message"] for n in notes), notes

    conf_report = result.task("with mongod.conf").result
    assert real_problems(conf_report) == []
    assert conf_report["servers"][0]["kmip"]["mongod_exchange"] == {
        "operation": "Get Attributes",
        "key_identifier": new_key,
        "result": "Success",
    }
    assert conf_report["key"]["usable"] is True and conf_report["key"]["state"] == "Active"

    no_key = result.task("no key").result
    assert real_problems(no_key) == []
    assert "key" not in no_key
    exchange = no_key["servers"][0]["kmip"]["mongod_exchange"]
    assert exchange["key_identifier"] is None and exchange["result"] == "Item Not Found"
    assert no_key["servers"][0]["kmip"]["discover_versions_supported"] is None  # not a KMIP 1.0 operation

    v12 = result.task("KMIP 1.2").result
    assert [p["where"] for p in real_problems(v12)] == ["kmip_version"]  # only "PSMDB speaks 1.0"
    assert v12["servers"][0]["kmip"]["discover_versions_supported"] is False
    assert v12["key"]["usable"] is True
    assert any("declined Discover Versions (Permission Denied)" in n["message"] for n in v12["notes"])

    # What reached the KMS: mongod's operations and the refused questions, nothing else; one
    # Get Attributes per run (the probe's is the key check's), a Get only with a key.
    assert proxy.operations(mark, allowed=True) == ["Get Attributes", "Get", "Get Attributes", "Get Attributes", "Get"]
    assert sorted(set(proxy.operations(mark, allowed=False))) == ["Discover Versions", "Query"]
    assert set(kmip_server.operations(since=server_mark)) <= {"GetAttributes", "Get"}


def test_permission_denied_on_get_attributes_is_still_a_problem(
    run_playbook, kmip_options, kms_psmdb_only, policy_proxy, lab_kmip, kmip_server
) -> None:
    # a key registered PSMDB's way by another mongod: PyKMIP lets only its owner read it
    with lab_kmip(kms_psmdb_only, client="mongod2") as kmip:
        foreign = register_aes_key(kmip)
        kmip.activate(foreign)
    # a KMS role that can register, activate and get, but not get_attributes
    no_get_attributes = policy_proxy(
        21, allowed={enums.Operation.REGISTER, enums.Operation.ACTIVATE, enums.Operation.GET}
    )
    lenient = {"fail_on_problems": False, "connect_timeout_ms": PATIENT_MS}
    mark, server_mark = no_get_attributes.mark(), kmip_server.log_offset()
    tasks = [
        task(
            "foreign key",
            "kmip_server_info",
            {**kmip_options(servers=[kms_psmdb_only]), **lenient, "key_identifier": foreign},
        ),
        task(
            "role without get_attributes", "kmip_server_info", {**kmip_options(servers=[no_get_attributes]), **lenient}
        ),
        task(
            "strict",
            "kmip_server_info",
            {**kmip_options(servers=[no_get_attributes]), "connect_timeout_ms": PATIENT_MS},
            ignore_errors=True,
        ),
    ]
    result = run_playbook(playbook(tasks), timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()

    for name, where in (
        ("foreign key", kms_psmdb_only.endpoint),
        ("role without get_attributes", no_get_attributes.endpoint),
    ):
        report = result.task(name).result
        assert report["ok"] is False and report["selected_server"] is None, name
        server = report["servers"][0]
        assert server["ok"] is False and server["error_kind"] == "permission_denied", (name, server)
        assert server["kmip"]["mongod_exchange"]["result"] == "Permission Denied"
        errors = [p for p in report["problems"] if p["severity"] == "error"]
        assert any(p["where"] == where and "Get Attributes returned Permission Denied" in p["message"] for p in errors)
        assert report["notes"] == []  # the server is not usable: nothing else is asked of it
    assert result.task("foreign key").result["servers"][0]["kmip"]["mongod_exchange"]["key_identifier"] == foreign
    # the advice fits the cause: an object owned by another identity, or an operation not granted
    assert "only the identity that registered a key" in result.task("foreign key").result["servers"][0]["error"]
    assert "operation_get_attributes" in result.task("role without get_attributes").result["servers"][0]["error"]

    strict = result.task("strict")
    assert strict.failed and "mongod could not start" in strict.result["msg"]
    assert "Permission Denied" in strict.result["msg"]
    # nothing but Get Attributes was tried, and only the foreign key's reached PyKMIP
    assert set(no_get_attributes.operations(mark)) == {"Get Attributes"}
    assert kmip_server.operations(since=server_mark) == ["GetAttributes"]


def test_any_refusal_of_query_is_information_not_failure(run_playbook, kmip_options, policy_proxy, lab_kmip) -> None:
    # Vault's result reason for an operation its role does not grant is not documented: any
    # reason, or a dropped session, must leave the server usable.
    refusals = {
        "General Failure": policy_proxy(22, denial_reason=enums.ResultReason.GENERAL_FAILURE),
        "Operation Not Supported": policy_proxy(23, denial_reason=enums.ResultReason.OPERATION_NOT_SUPPORTED),
        "Illegal Operation": policy_proxy(24, denial_reason=enums.ResultReason.ILLEGAL_OPERATION),
        None: policy_proxy(25, close_on_denial=True),
    }
    with lab_kmip(refusals[None]) as kmip:  # PSMDB's first start, through one of them
        uid = register_aes_key(kmip)
        kmip.activate(uid)
    tasks = [
        task(
            str(reason),
            "kmip_server_info",
            {**kmip_options(servers=[proxy], connect_timeout_ms=PATIENT_MS), "key_identifier": uid},
        )
        for reason, proxy in refusals.items()
    ]
    result = run_playbook(playbook(tasks), timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()
    for reason, proxy in refusals.items():
        report = result.task(str(reason)).result
        assert report["ok"] is True and real_problems(report) == [], (reason, report["problems"])
        assert report["key"]["usable"] is True, reason
        declined = report["servers"][0]["kmip"]["declined"]
        assert [(d["operation"], d["reason"]) for d in declined] == [("Query", reason)]
        assert any("declined Query" in n["message"] for n in report["notes"]), reason
        assert proxy.operations(allowed=False) == ["Query"]
    # the dropped session: the key check went on in a new one (Get Attributes, Query | Get)
    assert refusals[None].operations()[-3:] == ["Get Attributes", "Query", "Get"]
    with lab_kmip(refusals[None]) as kmip:
        assert key_state(kmip, uid) == "ACTIVE"


def test_key_management_on_a_psmdb_plus_key_management_kms(
    run_playbook, kmip_options, kms_key_management, kms_psmdb_only
) -> None:
    name = f"least-privilege-{uuid.uuid4().hex[:8]}"
    options = kmip_options(servers=[kms_key_management], connect_timeout_ms=PATIENT_MS)
    mark = kms_key_management.mark()
    tasks = [
        task("present", "kmip_key", {**options, "name": name}),
        task("info", "kmip_key_info", {**options, "names": [name]}),
        task("server info", "kmip_server_info", {**options, "key_identifier": "{{ created.key_identifier }}"}),
        task("deactivated", "kmip_key", {**options, "name": name, "state": "deactivated"}),
        task("absent", "kmip_key", {**options, "name": name, "state": "absent"}),
        task(
            "present on the PSMDB-only KMS",
            "kmip_key",
            {**kmip_options(servers=[kms_psmdb_only], connect_timeout_ms=PATIENT_MS), "name": name},
            ignore_errors=True,
        ),
    ]
    tasks[0]["register"] = "created"
    result = run_playbook(playbook(tasks), timeout=PLAY_TIMEOUT_S)
    assert result.rc == 0, result.explain()

    created = result.task("present").result
    assert result.task("present").changed and created["operations"] == ["Locate", "Register", "Activate"]
    assert [k["state"] for k in result.task("info").result["keys"]] == ["Active"]
    info = result.task("server info").result
    assert info["ok"] is True and info["key"]["usable"] is True and real_problems(info) == []
    assert result.task("deactivated").changed and result.task("absent").changed
    # the only refusal on this KMS was the probe's Query
    assert kms_key_management.operations(mark, allowed=False) == ["Query"]
    assert set(kms_key_management.operations(mark, allowed=True)) <= {
        "Locate",
        "Register",
        "Activate",
        "Get Attributes",
        "Get",
        "Revoke",
        "Destroy",
    }

    refused = result.task("present on the PSMDB-only KMS")
    assert refused.failed and refused.result["error_kind"] == "permission_denied"
    assert "Locate returned Permission Denied" in refused.result["msg"]
