"""Data-at-rest encryption start-up, master key rotation and key-state polling (psmdb-kmip.md s.2-6).

``start_storage`` is what mongod does between reading its options and accepting connections:
obtain the master key (KMIP or key file), check it against storage.bson, open or create the
keystore and return a ready DataStore. Refusals raise ``EncryptionError`` (fatal log 29120,
exit 1001); a completed rotation raises ``MasterKeyRotationCompleted`` (exit 0).
"""

from __future__ import annotations

import base64
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psmdb_emulator import storage
from psmdb_emulator.contracts import DataStore, ShutdownController
from psmdb_emulator.kmip_client import (
    KeyState,
    KmipConnector,
    KmipSession,
    KmipUnreachableError,
    generate_master_key,
)
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import Options

EXIT_ENCRYPTION_ERROR = 1001  # ExitCode::perconaDataAtRestEncryptionError
KMIP_FACILITY = "KMIP server"

MSG_KEY_ID_MISMATCH = (
    "The provided (via the command line option or the configuration file) KMIP keyIdentifier is not equal to that "
    "the system is already configured with. If it was intended to rotate the master key, please add the "
    "`--kmipRotateMasterKey` command line option or the `security.kmip.rotateMasterKey` configuration file "
    "parameter. Otherwise, please omit the `--kmipMasterKeyId` command line option and the "
    "`security.kmip.keyIdentifier` configuration parameter."
)
MSG_KEY_ABSENT = (
    "Cannot start. Master encryption key is absent on the key management facility. Check configuration options."
)
MSG_KEY_NOT_ACTIVE = "Master encryption key is not in the active state on the key management facility."
MSG_KEY_ABSENT_POLL = "Master encryption key is absent on the key management facility."
MSG_PRE_ACTIVE = (
    "Data-at-rest encryption was initialized with a pre-active master key. Since version 8.0.0, an active key "
    "will be required. Please activate the master key or rotate it to an active one before upgrading."
)
MSG_VAULT_DATA = (
    "Trying to decrypt the data-at-rest with the key from a KMIP server but the system was configured with a key "
    "from a Vault server"
)
MSG_KEYFILE_DATA = (
    "Trying to decrypt the data-at-rest with the key from a KMIP server but the system was not configured using KMIP"
)
MSG_ROTATION_SAME_ID = (
    "The master encryption key rotation is in effect but the provided (via the command line option or the "
    "configuration file) KMIP key identifier is equal to that the system is already configured with."
)
MSG_READ_FAILED = "reading the master key from the KMIP server failed"
MSG_SAVE_FAILED = "saving the master key to the KMIP server failed"


class EncryptionError(Exception):
    """A refusal that mongod reports as fatal 29120 "Data-at-Rest Encryption Error" and exit 1001."""

    def __init__(self, what: str, reason: str, **details: Any) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason
        self.details = details

    def to_document(self) -> dict[str, Any]:
        return {"what": self.what, "reason": self.reason, **self.details}


class StorageEngineError(Exception):
    """WiredTiger cannot open the data (e.g. encrypted files without encryption): fatal 28595, exit 14."""


@dataclass
class MasterKeyRotationCompleted(Exception):  # PSMDB names it so
    old_key_id: str
    new_key_id: str


@dataclass
class StartedStorage:
    store: DataStore
    key_id: str | None = None
    # polling runs only for KMIP keys read or created Active under activateKeys
    poll_key_state: bool = False
    notes: list[str] = field(default_factory=list)


def _kmip_id(uid: str) -> dict[str, str]:
    return {"kmipKeyIdentifier": uid}


def start_storage(options: Options, logger: Logger) -> StartedStorage:
    db_path = Path(options.storage.db_path)
    metadata = storage.read_storage_metadata(db_path)
    stored = storage.stored_encryption(metadata)
    security = options.security

    if not security.enable_encryption:
        if stored is not None:
            raise StorageEngineError(
                "the data files are encrypted (storage.bson has encryption options) but encryption is not enabled; "
                "start mongod with the same security.enableEncryption settings the data was created with"
            )
        store = storage.PlainDataStore(db_path)
        _verify(store)
        if metadata is None:
            storage.write_storage_metadata(db_path, None)
        return StartedStorage(store)

    if metadata is not None and stored is None and _has_data(db_path):
        raise StorageEngineError("the existing data files are not encrypted; encryption cannot be enabled on them")

    if security.kmip.enabled:
        return _start_kmip(options, logger, db_path, stored)
    if security.encryption_key_file:
        return _start_key_file(options, logger, db_path, stored)
    raise EncryptionError("encryption start-up failed", "Vault is not emulated by the PSMDB emulator")


def _has_data(db_path: Path) -> bool:
    data_dir = db_path / storage.DATA_DIR
    return data_dir.is_dir() and any(data_dir.iterdir())


def _verify(store: storage.PlainDataStore | storage.EncryptedDataStore) -> None:
    try:
        store.verify_all()
    except storage.DecryptionError as exc:
        raise EncryptionError("failed to decrypt the data files", str(exc)) from exc
    except storage.StorageError as exc:
        raise StorageEngineError(str(exc)) from exc


def _open_keystore(
    logger: Logger, db_path: Path, master_key: bytes, cipher_mode: str, key_id_document: dict[str, Any] | str
) -> storage.EncryptedDataStore:
    keystore_dir = db_path / storage.KEYSTORE_DIR
    try:
        if storage.Keystore.exists(keystore_dir):
            keystore = storage.Keystore.open(keystore_dir, master_key, cipher_mode)
        else:
            keystore = storage.Keystore.create(keystore_dir, master_key, cipher_mode)
    except storage.DecryptionError as exc:
        raise EncryptionError("failed to open the encryption keys DB", str(exc)) from exc
    logger.log("I", "STORAGE", 29039, "Encryption keys DB is initialized successfully")
    store = storage.EncryptedDataStore(db_path, keystore, key_id_document)
    _verify(store)
    return store


# -- KMIP --------------------------------------------------------------------------------------


def _start_kmip(options: Options, logger: Logger, db_path: Path, stored: dict[str, Any] | None) -> StartedStorage:
    kmip = options.security.kmip
    connector = KmipConnector(kmip, logger)
    if stored is not None and "vault" in stored:
        raise EncryptionError("key reading failed", MSG_VAULT_DATA)
    if stored is not None and "kmip" not in stored:
        raise EncryptionError("key reading failed", MSG_KEYFILE_DATA)
    stored_id = storage.stored_kmip_key_id({"options": {"encryption": stored}}) if stored else None

    if kmip.rotate_master_key:
        _rotate(options, logger, connector, db_path, stored_id)

    if stored_id is not None and kmip.key_identifier is not None and kmip.key_identifier != stored_id:
        raise EncryptionError(
            "key reading failed",
            MSG_KEY_ID_MISMATCH,
            configured=_kmip_id(stored_id),
            provided=_kmip_id(kmip.key_identifier),
        )
    key_id = stored_id or kmip.key_identifier
    poll = kmip.activate_keys and kmip.key_state_polling_seconds > 0
    if key_id is None:
        key_id, master_key = _register_new_key(connector, logger, activate=kmip.activate_keys)
    else:
        master_key, tolerated_pre_active = _read_key(
            connector, key_id, activate_keys=kmip.activate_keys, strict=kmip.activate_keys_explicit
        )
        logger.log(
            "I",
            "STORAGE",
            29115,
            "Master encryption key has been read from the key management facility.",
            {"keyManagementFacilityType": KMIP_FACILITY, "keyIdentifier": _kmip_id(key_id)},
        )
        if tolerated_pre_active:
            logger.log("W", "STORAGE", 29124, MSG_PRE_ACTIVE, {"keyIdentifier": _kmip_id(key_id)})
            poll = False
    store = _open_keystore(
        logger, db_path, master_key, options.security.encryption_cipher_mode, {"kmip": {"keyId": key_id}}
    )
    if stored_id != key_id:
        storage.write_storage_metadata(db_path, {"kmip": {"keyId": key_id}})
    return StartedStorage(store, key_id=key_id, poll_key_state=poll)


def _register_new_key(connector: KmipConnector, logger: Logger, *, activate: bool) -> tuple[str, bytes]:
    master_key = generate_master_key()

    def register(session: KmipSession) -> str:
        uid = session.register_symmetric_key(master_key)
        if activate:
            session.activate(uid)
        return uid

    try:
        uid = connector.run(register)
    except KmipUnreachableError as exc:
        raise EncryptionError(MSG_SAVE_FAILED, str(exc)) from exc
    logger.log(
        "I",
        "STORAGE",
        29116,
        "Master encryption key has been created on the key management facility",
        {"keyManagementFacilityType": KMIP_FACILITY, "keyIdentifier": _kmip_id(uid)},
    )
    return uid, master_key


def _read_key(
    connector: KmipConnector, uid: str, *, activate_keys: bool, strict: bool, check_state: bool = True
) -> tuple[bytes, bool]:
    """GetAttributes(State) then Get in one session (Get only when the state is not checked).

    Returns the key and whether a Pre-Active key was tolerated (7.0.14-8 with activateKeys unset).
    """

    def read(session: KmipSession) -> tuple[KeyState | None, bytes | None]:
        state: KeyState | None = None
        if activate_keys and check_state:
            state = session.get_state(uid)
            if state.absent:
                return state, None
            if not state.active and (strict or state.name != "Pre-Active"):
                return state, None
        return state, session.get_symmetric_key(uid)

    try:
        state, key = connector.run(read)
    except KmipUnreachableError as exc:
        raise EncryptionError(MSG_READ_FAILED, str(exc)) from exc
    if state is not None and state.absent:
        raise EncryptionError("key reading failed", MSG_KEY_ABSENT, keyIdentifier=_kmip_id(uid))
    if state is not None and not state.active and key is None:
        raise EncryptionError(
            "key reading failed", MSG_KEY_NOT_ACTIVE, keyIdentifier=_kmip_id(uid), keyState=state.name
        )
    if key is None:
        raise EncryptionError("key reading failed", MSG_KEY_ABSENT, keyIdentifier=_kmip_id(uid))
    return key, state is not None and not state.active


def _rotate(options: Options, logger: Logger, connector: KmipConnector, db_path: Path, stored_id: str | None) -> None:
    kmip = options.security.kmip
    if stored_id is None:
        raise EncryptionError(
            "master key rotation failed",
            "Cannot do master key rotation: no data is encrypted with a KMIP master key yet.",
        )
    if kmip.key_identifier is not None and kmip.key_identifier == stored_id:
        raise EncryptionError(
            "master key rotation failed",
            MSG_ROTATION_SAME_ID,
            configured=_kmip_id(stored_id),
            provided=_kmip_id(kmip.key_identifier),
        )
    # 1. the old key: Get only, it may already be deactivated
    old_key, _ = _read_key(connector, stored_id, activate_keys=False, strict=True, check_state=False)
    # 2. the new key: registered, or the given id (must be Active when activateKeys)
    if kmip.key_identifier is None:
        new_id, new_key = _register_new_key(connector, logger, activate=kmip.activate_keys)
    else:
        new_id = kmip.key_identifier
        new_key, _ = _read_key(connector, new_id, activate_keys=kmip.activate_keys, strict=True)
    # 3. clone key.db under the new key, 4. swap directories
    rotation_dir = db_path / storage.ROTATION_DIR
    if rotation_dir.exists():
        raise EncryptionError(
            "master key rotation failed",
            f"Cannot do master key rotation. Rotation directory '{rotation_dir}' already exists.",
        )
    keystore_dir = db_path / storage.KEYSTORE_DIR
    try:
        keystore = storage.Keystore.open(keystore_dir, old_key, options.security.encryption_cipher_mode)
    except (storage.DecryptionError, FileNotFoundError) as exc:
        raise EncryptionError("failed to open the encryption keys DB", str(exc)) from exc
    keystore.write_reencrypted(rotation_dir, new_key)
    storage.swap_rotated_keystore(db_path)
    # 5./6. storage.bson gets the new id, then 29111; mongod exits cleanly afterwards
    storage.write_storage_metadata(db_path, {"kmip": {"keyId": new_id}})
    logger.log(
        "I",
        "STORAGE",
        29111,
        "Rotated master encryption key",
        {"oldKeyIdentifier": _kmip_id(stored_id), "newKeyIdentifier": _kmip_id(new_id)},
    )
    raise MasterKeyRotationCompleted(stored_id, new_id)


# -- key file (for the "KMIP on key-file data" refusal; not the focus of the emulator) ----------


def _start_key_file(options: Options, logger: Logger, db_path: Path, stored: dict[str, Any] | None) -> StartedStorage:
    path = options.security.encryption_key_file
    assert path is not None
    if stored is not None and "keyFilePath" not in stored:
        raise EncryptionError(
            "key reading failed", "the system was not configured using an encryption key file", configured=stored
        )
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise EncryptionError("key reading failed", f"permissions on {path} are too open")
        with open(path, "rb") as handle:
            master_key = base64.b64decode(handle.read().strip(), validate=True)
    except EncryptionError:
        raise
    except (OSError, ValueError) as exc:
        raise EncryptionError(
            "key reading failed", f"cannot read the encryption key file {path}: {type(exc).__name__}"
        ) from exc
    if len(master_key) != storage.KEY_BYTES:
        raise EncryptionError("key reading failed", f"the encryption key in {path} is not 256 bits long")
    store = _open_keystore(logger, db_path, master_key, options.security.encryption_cipher_mode, "local")
    if stored is None:
        storage.write_storage_metadata(db_path, {"keyFilePath": path})
    return StartedStorage(store)


# -- key-state polling -------------------------------------------------------------------------


class KeyStateMonitor:
    """PSMDB's periodic job: GetAttributes(State) every keyStatePollingSeconds, shutdown if not Active."""

    def __init__(
        self,
        connector: KmipConnector,
        key_id: str,
        period_seconds: int,
        logger: Logger,
        shutdown: ShutdownController,
    ) -> None:
        self._connector = connector
        self._key_id = key_id
        self._period = period_seconds
        self._logger = logger
        self._shutdown = shutdown
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="KeyStateMonitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._connector_timeout())

    def _connector_timeout(self) -> float:
        # a poll in flight finishes within its sessions' timers; don't wait forever for it
        return 60.0

    def poll_once(self) -> KeyState | None:
        """One poll; returns the state, or None when the KMIP servers were unreachable."""
        try:
            state = self._connector.run(lambda session: session.get_state(self._key_id))
        except KmipUnreachableError as exc:
            self._logger.log(
                "E",
                "STORAGE",
                29123,
                "Data-at-Rest Encryption Error",
                {"error": {"what": MSG_READ_FAILED + " (key state polling)", "reason": str(exc)}},
            )
            return None
        if state.absent:
            self._logger.log("E", "STORAGE", 29121, MSG_KEY_ABSENT_POLL, {"keyIdentifier": _kmip_id(self._key_id)})
            self._shutdown.request(EXIT_ENCRYPTION_ERROR, MSG_KEY_ABSENT_POLL)
        elif not state.active:
            self._logger.log(
                "E",
                "STORAGE",
                29122,
                MSG_KEY_NOT_ACTIVE,
                {"keyIdentifier": _kmip_id(self._key_id), "keyState": state.name},
            )
            self._shutdown.request(EXIT_ENCRYPTION_ERROR, MSG_KEY_NOT_ACTIVE)
        return state

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            if self._shutdown.requested:
                return
            try:
                self.poll_once()
            except Exception as exc:  # a bug here must not kill the process silently
                self._logger.log("E", "STORAGE", 29123, "Data-at-Rest Encryption Error", {"error": repr(exc)})
