"""Encryption start-up against real PyKMIP servers (psmdb-kmip.md sections 2, 3, 5 and 6).

These run the emulator's start-up in-process (same code the ``mongod`` process runs) so
that each behaviour costs one KMIP round trip, not a process start; exit codes and the log
as a process writes it are covered in test_core_process.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from pathlib import Path
from typing import Any

import bson
import pytest

from psmdb_emulator import storage
from psmdb_emulator.encryption import (
    MSG_KEY_ABSENT,
    MSG_KEY_ID_MISMATCH,
    MSG_KEY_NOT_ACTIVE,
    MSG_KEYFILE_DATA,
    MSG_PRE_ACTIVE,
    MSG_VAULT_DATA,
    READ_FAILED,
    SAVE_FAILED,
    EncryptionError,
    StartedStorage,
    StorageEngineError,
    start_storage,
)
from psmdb_emulator.lab import KMIP1, KMIP_PORT, REFUSED, SILENT, WRONG_HOST, KmipAdmin, KmipLab
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import parse_args


class Run:
    """One in-process start-up with its own log file."""

    def __init__(self, tmp_path: Path, lab: KmipLab) -> None:
        self.tmp_path = tmp_path
        self.lab = lab
        self.db_path = tmp_path / "db"
        self.db_path.mkdir(exist_ok=True)
        self.log_path = tmp_path / "mongod.log"

    def start(self, *hosts: str, **flags: Any) -> StartedStorage:
        return self.start_with(*self.lab.kmip_args(*hosts, **flags))

    def start_with(self, *args: str) -> StartedStorage:
        logger = Logger(str(self.log_path))
        try:
            return start_storage(parse_args(["--dbpath", str(self.db_path), *args]), logger)
        finally:
            logger.close()

    def key_file(self, material: bytes) -> str:
        path = self.tmp_path / "keyfile"
        path.write_bytes(base64.b64encode(material) + b"\n")
        path.chmod(0o600)
        return str(path)

    @property
    def key_db(self) -> str:
        return str(self.db_path / "key.db")

    def log(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def ids(self) -> list[int]:
        return [line["id"] for line in self.log()]

    def entries(self, log_id: int) -> list[dict[str, Any]]:
        return [line for line in self.log() if line["id"] == log_id]

    def stored_key_id(self) -> str | None:
        return storage.stored_kmip_key_id(storage.read_storage_metadata(self.db_path))


@pytest.fixture
def run(tmp_path: Path, kmip_lab: KmipLab) -> Run:
    return Run(tmp_path, kmip_lab)


def test_first_start_registers_then_activates_in_one_session(
    run: Run, kmip_lab: KmipLab, kmip_admin: KmipAdmin
) -> None:
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    started = run.start()
    assert server.operations(since) == ["Register", "Activate"]
    assert started.key_id is not None
    assert kmip_admin.state(started.key_id) == "Active"
    created = run.entries(29116)
    assert created[0]["msg"] == "Master encryption key has been created on the key management facility"
    assert created[0]["attr"] == {
        "keyManagementFacilityType": "KMIP server",
        "keyIdentifier": {"kmipKeyIdentifier": started.key_id},
    }
    assert 29039 in run.ids()
    assert started.poll_key_state


def test_register_request_is_raw_aes256_usage_mask_12_without_name() -> None:
    from kmip.core import enums
    from kmip.core.messages import payloads
    from kmip.core.utils import BytearrayStream

    from psmdb_emulator.kmip_client import build_register_payload

    stream = BytearrayStream()
    build_register_payload(b"\x07" * 32).write(stream, enums.KMIPVersion.KMIP_1_0)
    decoded = payloads.RegisterRequestPayload()
    decoded.read(BytearrayStream(stream.buffer), enums.KMIPVersion.KMIP_1_0)
    attributes = {a.attribute_name.value: a.attribute_value.value for a in decoded.template_attribute.attributes}
    assert attributes == {
        "Cryptographic Algorithm": enums.CryptographicAlgorithm.AES,
        "Cryptographic Length": 256,
        "Cryptographic Usage Mask": 12,
    }
    assert decoded.object_type == enums.ObjectType.SYMMETRIC_KEY
    key_block = decoded.managed_object.key_block
    assert key_block.key_format_type.value == enums.KeyFormatType.RAW
    assert key_block.key_value.key_material.value == b"\x07" * 32


def test_registered_key_material_is_what_mongod_generated(run: Run, kmip_admin: KmipAdmin) -> None:
    started = run.start()
    stored = kmip_admin.key(started.key_id)
    assert stored is not None and len(stored) == 32
    # the keystore opens with exactly that key, so mongod registered the key it encrypts with
    storage.Keystore.open(run.db_path / storage.KEYSTORE_DIR, stored, "AES256-CBC")


def test_storage_bson_records_the_kmip_key_id(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.ENCRYPTION_STATUS_ENV, "1")  # a newer build, with encryptionAtRest
    started = run.start()
    document = bson.decode((run.db_path / "storage.bson").read_bytes())
    assert document == {
        "storage": {
            "engine": "wiredTiger",
            "options": {
                "directoryPerDB": False,
                "directoryForIndexes": False,
                "encryption": {"kmip": {"keyId": started.key_id}},
            },
        }
    }
    assert started.store.encryption_status() == {
        "encryptionEnabled": True,
        "encryptionCipherMode": "AES256-CBC",
        "encryptionKeyId": {"kmip": {"keyId": started.key_id}},
    }


def test_restart_reads_stored_key_with_get_attributes_then_get(run: Run, kmip_lab: KmipLab) -> None:
    first = run.start()
    first.store.write_db("app", b"payload")
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    again = run.start()
    assert server.operations(since) == ["GetAttributes", "Get"]
    assert again.key_id == first.key_id
    assert again.store.read_db("app") == b"payload"
    read = run.entries(29115)
    assert read[-1]["msg"] == "Master encryption key has been read from the key management facility."


def test_given_key_identifier_is_used_and_stored(run: Run, kmip_lab: KmipLab, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    started = run.start(kmipKeyIdentifier=uid)
    assert server.operations(since) == ["GetAttributes", "Get"]
    assert started.key_id == uid
    assert run.stored_key_id() == uid
    assert 29116 not in run.ids()


def test_activate_keys_false_registers_without_activate_and_reads_with_get_only(
    run: Run, kmip_lab: KmipLab, kmip_admin: KmipAdmin
) -> None:
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    started = run.start(kmipActivateKeys="false")
    assert server.operations(since) == ["Register"]
    assert started.key_id is not None
    assert kmip_admin.state(started.key_id) == "Pre-Active"
    assert not started.poll_key_state
    since = server.log_offset()
    run.start(kmipActivateKeys="false")
    assert server.operations(since) == ["Get"]


def test_i10_4_different_key_identifier_error_document(run: Run, kmip_admin: KmipAdmin) -> None:
    started = run.start()
    other = kmip_admin.register(activate=True)
    with pytest.raises(EncryptionError) as refused:
        run.start(kmipKeyIdentifier=other)
    assert refused.value.to_document() == {
        "what": "Can't create encryption key database",
        "reason": {
            "what": "key reading failed",
            "reason": MSG_KEY_ID_MISMATCH,
            "configured": {"kmipKeyIdentifier": started.key_id},
            "provided": {"kmipKeyIdentifier": other},
        },
        "encryptionKeyDatabaseDirectory": run.key_db,
    }


def test_same_key_identifier_as_stored_is_accepted(run: Run) -> None:
    started = run.start()
    assert run.start(kmipKeyIdentifier=started.key_id).key_id == started.key_id


def test_i10_4_absent_key_error_document(run: Run) -> None:
    with pytest.raises(EncryptionError) as refused:
        run.start(kmipKeyIdentifier="4242424242")
    assert refused.value.to_document() == {
        "what": "Can't create encryption key database",
        "reason": {
            "what": "key reading failed",
            "reason": MSG_KEY_ABSENT,
            "keyManagementFacilityType": "KMIP server",
            "keyIdentifier": {"kmipKeyIdentifier": "4242424242"},
        },
        "encryptionKeyDatabaseDirectory": run.key_db,
    }


def test_i10_4_deactivated_key_error_document_has_its_state(run: Run, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    kmip_admin.revoke(uid)
    with pytest.raises(EncryptionError) as refused:
        run.start(kmipKeyIdentifier=uid)
    assert refused.value.to_document() == {
        "what": "Can't create encryption key database",
        "reason": {
            "what": "key reading failed",
            "reason": MSG_KEY_NOT_ACTIVE,
            "keyManagementFacilityType": "KMIP server",
            "keyIdentifier": {"kmipKeyIdentifier": uid},
            "keyState": "Deactivated",
        },
        "encryptionKeyDatabaseDirectory": run.key_db,
    }


def test_i10_4_pre_active_key_tolerated_with_29124_when_activate_keys_unset(run: Run, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=False)
    started = run.start(kmipKeyIdentifier=uid)
    assert started.key_id == uid
    assert not started.poll_key_state  # 7.0.14-8: no polling after a pre-active start
    warning = run.entries(29124)
    assert (warning[0]["s"], warning[0]["msg"]) == ("W", MSG_PRE_ACTIVE)
    assert warning[0]["attr"] == {
        "keyManagementFacilityType": "KMIP server",
        "keyIdentifier": {"kmipKeyIdentifier": uid},
    }


def test_pre_active_key_refused_when_activate_keys_explicitly_true(run: Run, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=False)
    with pytest.raises(EncryptionError) as refused:
        run.start(kmipKeyIdentifier=uid, kmipActivateKeys="true")
    assert refused.value.key_error["reason"] == MSG_KEY_NOT_ACTIVE
    assert refused.value.key_error["keyState"] == "Pre-Active"


def test_key_of_another_owner_is_a_session_failure_not_absent(run: Run, kmip_lab: KmipLab) -> None:
    # PyKMIP answers PermissionDenied for another identity's key: PSMDB moves on and fails
    # as unreachable, not as "absent"
    other = KmipAdmin(kmip_lab, client_pem=str(kmip_lab.pki.client("other-owner").pem))
    uid = other.register(activate=True)
    with pytest.raises(EncryptionError) as refused:
        run.start(kmipKeyIdentifier=uid)
    assert refused.value.key_error == {
        "what": "key reading failed",
        "reason": READ_FAILED + "KMIP sessions failed for all the server hosts. No more remaining attempts.",
    }
    warning = run.entries(29117)[0]
    assert "reason: Permission Denied" in warning["attr"]["reason"]


def test_failover_uses_next_server_in_order(run: Run, kmip_lab: KmipLab) -> None:
    second = kmip_lab.servers["kmip1"]
    since = second.log_offset()
    started = run.start(REFUSED, KMIP1)
    assert started.key_id is not None
    assert second.operations(since) == ["Register", "Activate"]
    failures = run.entries(29117)
    assert [entry["attr"]["serverHost"] for entry in failures] == [f"{REFUSED}:{KMIP_PORT}"]
    assert failures[0]["s"] == "W"
    assert failures[0]["msg"] == "KMIP session failed"
    assert 29118 not in run.ids()


def test_all_servers_down_retries_passes_then_fails(run: Run) -> None:
    with pytest.raises(EncryptionError) as refused:
        run.start(REFUSED, WRONG_HOST, kmipConnectRetries=2)
    assert refused.value.to_document() == {
        "what": "Can't create encryption key database",
        "reason": {
            "what": "key saving failed",
            "reason": SAVE_FAILED + "KMIP sessions failed for all the server hosts. No more remaining attempts.",
        },
        "encryptionKeyDatabaseDirectory": run.key_db,
    }
    hosts = [entry["attr"]["serverHost"] for entry in run.entries(29117)]
    assert hosts == [f"{REFUSED}:{KMIP_PORT}", f"{WRONG_HOST}:{KMIP_PORT}"] * 3
    retries = run.entries(29118)
    assert [entry["attr"]["remainingAttempCount"] for entry in retries] == [2, 1]
    assert retries[0]["msg"] == "KMIP sessions failed for all the server hosts. Trying each host again."
    # a restart of an unreachable key reads: "reading the master key ... failed"
    assert not (run.db_path / "storage.bson").exists() or run.stored_key_id() is None


def test_silent_server_times_out_after_connect_timeout(run: Run) -> None:
    # the silent port accepts and never answers: only the timer can end that session
    with contextlib.suppress(EncryptionError):  # KMIP1 may also miss 1 s on a loaded machine
        run.start(SILENT, KMIP1, kmipConnectTimeoutMS=1000)
    failure = run.entries(29117)[0]
    assert failure["attr"] == {"serverHost": f"{SILENT}:{KMIP_PORT}", "reason": "KMIP session timed out"}


def test_hostname_is_verified_against_server_name(run: Run) -> None:
    with pytest.raises(EncryptionError):
        run.start(WRONG_HOST)
    reason = run.entries(29117)[0]["attr"]["reason"]
    assert "TLS handshake failed" in reason
    assert "127.0.30.6" in reason or "mismatch" in reason.lower()


def test_server_names_are_split_without_trimming(run: Run) -> None:
    # "a, b" keeps the space before b, as in PSMDB: that entry is a different host name
    with pytest.raises(EncryptionError):
        run.start(f"{REFUSED}, {KMIP1}")
    hosts = [entry["attr"]["serverHost"] for entry in run.entries(29117)]
    assert hosts == [f"{REFUSED}:{KMIP_PORT}", f" {KMIP1}:{KMIP_PORT}"]


def test_vault_encrypted_data_is_refused(run: Run) -> None:
    run.start_with("--enableEncryption", "--encryptionKeyFile", run.key_file(secrets.token_bytes(32)))
    # PSMDB's Vault id in storage.bson: the version serialised as a string
    storage.write_storage_metadata(run.db_path, {"vault": {"path": "secret/data/psmdb", "version": "1"}})
    with pytest.raises(EncryptionError) as refused:
        run.start()
    assert refused.value.key_error == {"what": "key reading failed", "reason": MSG_VAULT_DATA}


def test_i10_12_key_file_data_has_no_encryption_options_in_storage_bson(run: Run) -> None:
    started = run.start_with("--enableEncryption", "--encryptionKeyFile", run.key_file(secrets.token_bytes(32)))
    started.store.write_db("app", b"rows")
    assert bson.decode((run.db_path / "storage.bson").read_bytes()) == {
        "storage": {"engine": "wiredTiger", "options": {"directoryPerDB": False, "directoryForIndexes": False}}
    }
    assert (run.db_path / "key.db" / storage.KEYSTORE_FILE).is_file()
    read = run.entries(29115)[-1]["attr"]
    assert read["keyIdentifier"] == {"encryptionKeyFilePath": str(run.tmp_path / "keyfile")}


def test_i10_12_key_file_data_is_detected_through_key_db(run: Run) -> None:
    run.start_with("--enableEncryption", "--encryptionKeyFile", run.key_file(secrets.token_bytes(32)))
    # KMIP without a keyIdentifier: PSMDB's "not configured using KMIP"
    with pytest.raises(EncryptionError) as refused:
        run.start()
    assert refused.value.to_document() == {
        "what": "Can't create encryption key database",
        "reason": {"what": "key reading failed", "reason": MSG_KEYFILE_DATA},
        "encryptionKeyDatabaseDirectory": run.key_db,
    }
    # the same refusal for a rotation; and without encryption WiredTiger cannot open the data
    with pytest.raises(EncryptionError) as refused:
        run.start(kmipRotateMasterKey=True)
    assert refused.value.key_error["reason"] == MSG_KEYFILE_DATA
    with pytest.raises(StorageEngineError):
        run.start_with()


def test_i10_12_keystore_is_under_the_key_files_key(run: Run, kmip_admin: KmipAdmin) -> None:
    material = secrets.token_bytes(32)
    run.start_with("--enableEncryption", "--encryptionKeyFile", run.key_file(material)).store.write_db("app", b"r")
    storage.Keystore.open(run.db_path / "key.db", material, "AES256-CBC")
    with pytest.raises(EncryptionError) as refused:  # another key file cannot open it
        run.start_with("--enableEncryption", "--encryptionKeyFile", run.key_file(secrets.token_bytes(32)))
    assert refused.value.key_error["what"] == "failed to open the encryption keys DB"
    # a KMIP key holding the same material opens it (PSMDB reads the provided key), and
    # storage.bson then names that KMIP key
    uid = kmip_admin.register(activate=True, material=material)
    started = run.start(kmipKeyIdentifier=uid)
    assert started.store.read_db("app") == b"r"
    assert run.stored_key_id() == uid


def test_wrong_master_key_cannot_open_the_keystore(run: Run, kmip_admin: KmipAdmin) -> None:
    first = run.start()
    first.store.write_db("app", b"secret rows")
    other = kmip_admin.register(activate=True)
    # point storage.bson at another valid key: the keystore must not open with it
    storage.write_storage_metadata(run.db_path, {"kmip": {"keyId": other}})
    with pytest.raises(EncryptionError) as refused:
        run.start()
    assert refused.value.to_document()["what"] == "Can't create encryption key database"
    assert refused.value.key_error["what"] == "failed to open the encryption keys DB"
    data = (run.db_path / storage.DATA_DIR / "app.wt").read_bytes()
    assert b"secret rows" not in data


def test_cipher_mode_gcm_is_used_for_keystore_and_data(run: Run) -> None:
    started = run.start(encryptionCipherMode="AES256-GCM")
    started.store.write_db("app", b"rows")
    assert started.store.cipher_mode == "AES256-GCM"  # type: ignore[attr-defined]
    with pytest.raises(EncryptionError):  # the same key in CBC mode cannot read a GCM keystore
        run.start(encryptionCipherMode="AES256-CBC")
