"""Master key rotation (psmdb-kmip.md s.4) and key-state polling (s.6) against real PyKMIP servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from psmdb_emulator import storage
from psmdb_emulator.contracts import ShutdownController
from psmdb_emulator.encryption import (
    GET_STATE_FAILED,
    MSG_KEY_ABSENT,
    MSG_KEY_NOT_ACTIVE,
    MSG_PRE_ACTIVE,
    MSG_ROTATION_SAME_ID,
    MSG_ROTATION_WITHOUT_KEY_DB,
    EncryptionError,
    KeyStateMonitor,
    MasterKeyRotationCompleted,
    StartedStorage,
    start_storage,
)
from psmdb_emulator.kmip_client import KmipConnector
from psmdb_emulator.lab import KMIP1, REFUSED, KmipAdmin, KmipLab, kmip_object_count
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import parse_args


class Node:
    """One dbPath started in-process; ``start`` returns the storage or raises like mongod."""

    def __init__(self, tmp_path: Path, lab: KmipLab) -> None:
        self.lab = lab
        self.db_path = tmp_path / "db"
        self.db_path.mkdir()
        self.log_path = tmp_path / "mongod.log"

    def options(self, *hosts: str, **flags: Any) -> Any:
        return parse_args(["--dbpath", str(self.db_path), *self.lab.kmip_args(*hosts, **flags)])

    def start(self, *hosts: str, **flags: Any) -> StartedStorage:
        logger = Logger(str(self.log_path))
        try:
            return start_storage(self.options(*hosts, **flags), logger)
        finally:
            logger.close()

    def rotate(self, **flags: Any) -> MasterKeyRotationCompleted:
        with pytest.raises(MasterKeyRotationCompleted) as completed:
            self.start(kmipRotateMasterKey=True, **flags)
        return completed.value

    def log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [json.loads(line) for line in lines]

    def entries(self, log_id: int) -> list[dict[str, Any]]:
        return [entry for entry in self.log() if entry["id"] == log_id]

    def objects(self) -> int:
        """Managed objects on kmip1: a rotation that fails early must not add one."""
        return kmip_object_count(self.lab.servers["kmip1"])

    def stored_key_id(self) -> str | None:
        return storage.stored_kmip_key_id(storage.read_storage_metadata(self.db_path))


@pytest.fixture
def node(tmp_path: Path, kmip_lab: KmipLab) -> Node:
    return Node(tmp_path, kmip_lab)


def test_i10_5_rotation_in_psmdbs_order(node: Node, kmip_lab: KmipLab) -> None:
    first = node.start()
    first.store.write_db("app", b"rows")
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    log_start = len(node.log())
    completed = node.rotate()
    # old key: Get only; the new key is registered (+ Activate) only after the clone
    assert server.operations(since) == ["Get", "Register", "Activate"]
    assert [entry["id"] for entry in node.log()[log_start:]] == [29115, 29039, 29116, 29111]
    assert node.log()[log_start]["attr"]["keyIdentifier"] == {"kmipKeyIdentifier": first.key_id}
    assert completed.old_key_id == first.key_id
    assert completed.new_key_id != first.key_id
    assert node.stored_key_id() == completed.new_key_id
    assert (node.db_path / storage.ROTATED_DIR / storage.KEYSTORE_FILE).is_file()
    assert not (node.db_path / storage.ROTATION_DIR).exists()
    rotated = node.entries(29111)
    assert rotated[0]["msg"] == "Rotated master encryption key"
    assert rotated[0]["attr"] == {
        "oldKeyIdentifier": {"kmipKeyIdentifier": first.key_id},
        "newKeyIdentifier": {"kmipKeyIdentifier": completed.new_key_id},
    }
    # the database keys are unchanged: data written before rotation reads with the new key
    since = server.log_offset()
    again = node.start()
    assert server.operations(since) == ["GetAttributes", "Get"]
    assert again.key_id == completed.new_key_id
    assert again.store.read_db("app") == b"rows"


def test_rotation_works_with_a_deactivated_old_key(node: Node, kmip_admin: KmipAdmin) -> None:
    first = node.start()
    assert first.key_id is not None
    kmip_admin.revoke(first.key_id)
    completed = node.rotate()
    assert completed.old_key_id == first.key_id


def test_rotation_to_a_given_key_identifier(node: Node, kmip_lab: KmipLab, kmip_admin: KmipAdmin) -> None:
    node.start()
    target = kmip_admin.register(activate=True)
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    completed = node.rotate(kmipKeyIdentifier=target)
    assert server.operations(since) == ["Get", "GetAttributes", "Get"]
    assert completed.new_key_id == target
    assert node.stored_key_id() == target


def test_i10_5_rotation_to_a_pre_active_key_accepted_with_29124_when_activate_keys_unset(
    node: Node, kmip_admin: KmipAdmin
) -> None:
    node.start()
    target = kmip_admin.register(activate=False)
    completed = node.rotate(kmipKeyIdentifier=target)
    assert completed.new_key_id == target
    assert node.entries(29124)[-1]["attr"]["keyIdentifier"] == {"kmipKeyIdentifier": target}
    assert node.entries(29124)[-1]["msg"] == MSG_PRE_ACTIVE


def test_i10_4_rotation_to_a_pre_active_key_refused_when_activate_keys_true(node: Node, kmip_admin: KmipAdmin) -> None:
    first = node.start()
    target = kmip_admin.register(activate=False)
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True, kmipKeyIdentifier=target, kmipActivateKeys="true")
    assert refused.value.to_document() == {
        "what": "Can't rotate master encryption key",
        "reason": {
            "what": "key reading failed",
            "reason": MSG_KEY_NOT_ACTIVE,
            "keyManagementFacilityType": "KMIP server",
            "keyIdentifier": {"kmipKeyIdentifier": target},
            "keyState": "Pre-Active",
        },
    }
    assert node.stored_key_id() == first.key_id
    assert not (node.db_path / storage.ROTATION_DIR).exists()  # removed again by its guard


def test_rotation_to_the_stored_key_identifier_is_refused(node: Node) -> None:
    first = node.start()
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True, kmipKeyIdentifier=first.key_id)
    assert refused.value.key_error == {
        "what": "key reading failed",
        "reason": MSG_ROTATION_SAME_ID,
        "configured": {"kmipKeyIdentifier": first.key_id},
        "provided": {"kmipKeyIdentifier": first.key_id},
    }
    assert node.stored_key_id() == first.key_id


def test_i10_4_leftover_rotation_directory_error_and_nothing_registered(node: Node) -> None:
    first = node.start()
    rotation_dir = node.db_path / storage.ROTATION_DIR
    rotation_dir.mkdir()
    (rotation_dir / "left-by-a-killed-rotation").write_text("x")
    objects = node.objects()
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True)
    assert refused.value.to_document() == {
        "what": "Can't rotate master encryption key",
        "reason": {
            "what": "Rotation key database directory already exists",
            "rotationKeyDatabaseDirectory": str(rotation_dir),
        },
    }
    assert node.objects() == objects  # the new key was not registered
    assert (rotation_dir / "left-by-a-killed-rotation").exists()  # not ours to remove
    assert node.stored_key_id() == first.key_id


def test_i10_5_rotation_failing_before_the_clone_registers_nothing(node: Node) -> None:
    first = node.start()
    objects = node.objects()
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True, kmipKeyIdentifier="4242424242")
    assert refused.value.key_error["reason"] == MSG_KEY_ABSENT
    assert refused.value.to_document()["what"] == "Can't rotate master encryption key"
    assert node.objects() == objects
    assert not (node.db_path / storage.ROTATION_DIR).exists()
    assert node.stored_key_id() == first.key_id
    assert not (node.db_path / storage.ROTATED_DIR).exists()


def test_i10_4_rotation_without_a_keystore_error_document(node: Node) -> None:
    objects = node.objects()
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True)
    document = refused.value.to_document()
    remediations = document.pop("possibleRemediationActions")
    assert document == {
        "what": MSG_ROTATION_WITHOUT_KEY_DB,
        "dbPath": str(node.db_path),
        "encryptionKeyDatabaseDirectory": str(node.db_path / "key.db"),
    }
    assert remediations and all(isinstance(action, str) for action in remediations)
    assert not (node.db_path / "key.db").exists()
    assert node.objects() == objects


def monitor_for(node: Node, key_id: str, *hosts: str) -> tuple[KeyStateMonitor, ShutdownController]:
    options = node.options(*hosts, kmipKeyStatePollingSeconds=1)
    shutdown = ShutdownController()
    logger = Logger(str(node.log_path))
    monitor = KeyStateMonitor(KmipConnector(options.security.kmip, logger), key_id, 1, logger, shutdown)
    return monitor, shutdown


def test_poll_of_an_active_key_keeps_running(node: Node, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    monitor, shutdown = monitor_for(node, uid)
    state = monitor.poll_once()
    assert state is not None and state.active
    assert not shutdown.requested


def test_poll_of_a_deactivated_key_requests_shutdown_1001(node: Node, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    kmip_admin.revoke(uid)
    monitor, shutdown = monitor_for(node, uid)
    monitor.poll_once()
    assert shutdown.requested and shutdown.exit_code == 1001
    entry = node.entries(29122)[0]
    assert entry["s"] == "E"
    assert entry["msg"] == "Master encryption key is not in the active state on the key management facility."
    assert entry["attr"] == {
        "keyManagementFacilityType": "KMIP server",
        "keyIdentifier": {"kmipKeyIdentifier": uid},
        "keyState": "Deactivated",
    }


def test_poll_of_an_absent_key_requests_shutdown_1001(node: Node, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    kmip_admin.revoke(uid)
    kmip_admin.destroy(uid)
    monitor, shutdown = monitor_for(node, uid)
    monitor.poll_once()
    assert shutdown.requested and shutdown.exit_code == 1001
    assert node.entries(29121)[0]["msg"] == "Master encryption key is absent on the key management facility."
    assert node.entries(29121)[0]["attr"] == {
        "keyManagementFacilityType": "KMIP server",
        "keyIdentifier": {"kmipKeyIdentifier": uid},
    }


def test_poll_with_servers_unreachable_logs_29123_and_keeps_running(node: Node) -> None:
    monitor, shutdown = monitor_for(node, "1", REFUSED)
    assert monitor.poll_once() is None
    assert not shutdown.requested
    entry = node.entries(29123)[0]
    assert entry["msg"] == "Data-at-Rest Encryption Error"
    assert entry["attr"]["error"] == {
        "what": "key state retrieval failed",
        "reason": GET_STATE_FAILED + "KMIP sessions failed for all the server hosts. No more remaining attempts.",
    }


def test_i10_8_key_state_polling_runs_once_at_start(node: Node, kmip_admin: KmipAdmin) -> None:
    # a key deactivated while mongod was down is caught by the first poll, not a period later
    uid = kmip_admin.register(activate=True)
    kmip_admin.revoke(uid)
    options = node.options(kmipKeyStatePollingSeconds=3600)
    shutdown = ShutdownController()
    logger = Logger(str(node.log_path))
    monitor = KeyStateMonitor(KmipConnector(options.security.kmip, logger), uid, 3600, logger, shutdown)
    monitor.start()
    try:
        assert shutdown.wait(timeout=120), "no poll at start"
    finally:
        monitor.stop()
        logger.close()
    assert shutdown.exit_code == 1001
    assert node.entries(29122)[0]["attr"]["keyState"] == "Deactivated"


def test_poll_uses_failover_too(node: Node, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    monitor, shutdown = monitor_for(node, uid, REFUSED, KMIP1)
    state = monitor.poll_once()
    assert state is not None and state.active
    assert not shutdown.requested
    assert [entry["attr"]["serverHost"] for entry in node.entries(29117)] == [f"{REFUSED}:5696"]
