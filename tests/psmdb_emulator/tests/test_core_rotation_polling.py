"""Master key rotation (psmdb-kmip.md s.4) and key-state polling (s.6) against real PyKMIP servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from psmdb_emulator import storage
from psmdb_emulator.contracts import ShutdownController
from psmdb_emulator.encryption import (
    MSG_KEY_NOT_ACTIVE,
    MSG_ROTATION_SAME_ID,
    EncryptionError,
    KeyStateMonitor,
    MasterKeyRotationCompleted,
    StartedStorage,
    start_storage,
)
from psmdb_emulator.kmip_client import KmipConnector
from psmdb_emulator.lab import KMIP1, REFUSED, KmipAdmin, KmipLab
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

    def entries(self, log_id: int) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [entry for entry in map(json.loads, lines) if entry["id"] == log_id]

    def stored_key_id(self) -> str | None:
        return storage.stored_kmip_key_id(storage.read_storage_metadata(self.db_path))


@pytest.fixture
def node(tmp_path: Path, kmip_lab: KmipLab) -> Node:
    return Node(tmp_path, kmip_lab)


def test_rotation_registers_new_key_reencrypts_swaps_and_logs(node: Node, kmip_lab: KmipLab) -> None:
    first = node.start()
    first.store.write_db("app", b"rows")
    server = kmip_lab.servers["kmip1"]
    since = server.log_offset()
    completed = node.rotate()
    # old key: Get only; new key: Register + Activate
    assert server.operations(since) == ["Get", "Register", "Activate"]
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


def test_rotation_to_a_pre_active_key_is_refused(node: Node, kmip_admin: KmipAdmin) -> None:
    node.start()
    target = kmip_admin.register(activate=False)
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True, kmipKeyIdentifier=target)
    assert refused.value.reason == MSG_KEY_NOT_ACTIVE


def test_rotation_to_the_stored_key_identifier_is_refused(node: Node) -> None:
    first = node.start()
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True, kmipKeyIdentifier=first.key_id)
    assert refused.value.reason == MSG_ROTATION_SAME_ID
    assert node.stored_key_id() == first.key_id


def test_rotation_refused_when_rotation_directory_exists(node: Node) -> None:
    first = node.start()
    rotation_dir = node.db_path / storage.ROTATION_DIR
    rotation_dir.mkdir()
    with pytest.raises(EncryptionError) as refused:
        node.start(kmipRotateMasterKey=True)
    assert refused.value.reason == f"Cannot do master key rotation. Rotation directory '{rotation_dir}' already exists."
    assert node.stored_key_id() == first.key_id


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
    assert entry["attr"]["keyState"] == "Deactivated"


def test_poll_of_an_absent_key_requests_shutdown_1001(node: Node, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    kmip_admin.revoke(uid)
    kmip_admin.destroy(uid)
    monitor, shutdown = monitor_for(node, uid)
    monitor.poll_once()
    assert shutdown.requested and shutdown.exit_code == 1001
    assert node.entries(29121)[0]["msg"] == "Master encryption key is absent on the key management facility."


def test_poll_with_servers_unreachable_logs_29123_and_keeps_running(node: Node) -> None:
    monitor, shutdown = monitor_for(node, "1", REFUSED)
    assert monitor.poll_once() is None
    assert not shutdown.requested
    entry = node.entries(29123)[0]
    assert entry["msg"] == "Data-at-Rest Encryption Error"
    assert "No more remaining attempts" in entry["attr"]["error"]["reason"]


def test_poll_uses_failover_too(node: Node, kmip_admin: KmipAdmin) -> None:
    uid = kmip_admin.register(activate=True)
    monitor, shutdown = monitor_for(node, uid, REFUSED, KMIP1)
    state = monitor.poll_once()
    assert state is not None and state.active
    assert not shutdown.requested
    assert [entry["attr"]["serverHost"] for entry in node.entries(29117)] == [f"{REFUSED}:5696"]
