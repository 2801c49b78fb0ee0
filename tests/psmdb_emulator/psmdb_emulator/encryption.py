"""Data-at-rest encryption start-up, master key rotation and key-state polling (psmdb-kmip.md s.2-6).

``start_storage`` is what mongod does between reading its options and accepting connections:
obtain the master key (KMIP or key file), check it against storage.bson, open or create the
keystore and return a ready DataStore. Refusals raise ``EncryptionError`` (fatal log 29120,
exit 1001) carrying PSMDB's nested error document; a completed rotation raises
``MasterKeyRotationCompleted`` (exit 0).

The flow follows PSMDB's WiredTigerKVEngine/MasterKeyProvider (sources in the README): an
existing ``key.db`` means "read the configured key" (storage.bson), a missing one means "obtain
a key" (the provided keyIdentifier, or a new key registered on the KMIP server).
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psmdb_emulator import storage, testhooks
from psmdb_emulator.contracts import DataStore, ShutdownController
from psmdb_emulator.kmip_client import (
    KeyState,
    KmipConnector,
    KmipSession,
    KmipUnreachableError,
    generate_master_key,
)
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import KmipOptions, Options

EXIT_ENCRYPTION_ERROR = 1001  # ExitCode::perconaDataAtRestEncryptionError
KMIP_FACILITY = "KMIP server"
KEY_FILE_FACILITY = "local key file"  # [I] PSMDB's string for key files was not found

# error_builder.h: KeyErrorBuilder's "key <reading|saving|state retrieval> failed"
OP_READ = "reading"
OP_SAVE = "saving"
OP_GET_STATE = "state retrieval"
WHAT_CREATE_KEY_DB = "Can't create encryption key database"
WHAT_ROTATE = "Can't rotate master encryption key"

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
MSG_KEY_READ = "Master encryption key has been read from the key management facility."
MSG_KEY_CREATED = "Master encryption key has been created on the key management facility"
MSG_KEY_ABSENT_POLL = "Master encryption key is absent on the key management facility."
MSG_PRE_ACTIVE = (
    "Data-at-rest encryption was initialized with a pre-active master key. Since version 8.0.0, an active key "
    "will be required. Please activate the master key or rotate it to an active one before upgrading."
)
MSG_VAULT_DATA = (
    "Trying to decrypt the data-at-rest with the key from a KMIP server but the system was configured with a key "
    "from a Vault server. Please replace the `--vaultServerName` command line option with `--kmipServerName` or "
    "the `security.vault.serverName` configuration file parameter with `security.kmip.serverName`. Alternatively, "
    "if it was intended to migrate from Vault to KMIP, create a new empty database, specify "
    "`security.kmip.serverName` and migrate all the data to the new database."
)
# PSMDB's own spelling, typos included ("comand", "kmipKeyIdentifer")
MSG_KEYFILE_DATA = (
    "Trying to decrypt the data-at-rest with a key from a KMIP server but the system was not configured using "
    "KMIP. Please remove the `--kmipRotateMasterKey` comand line option and the `security.kmip.rotateMasterKey` "
    "configuration file parameter if any of them was provided. Then specify the `--kmipKeyIdentifer` command line "
    "option or the `security.kmip.keyIdentifier` configuration file parameter."
)
MSG_ROTATION_SAME_ID = (
    "The master encryption key rotation is in effect but the provided (via the command line option or the "
    "configuration file) key identifier is equal to that the system is already configured with. "
)
MSG_ROTATION_WITHOUT_KEY_DB = "Master key rotation is in effect but there is no existing encryption key database."
MSG_ROTATION_DIR_EXISTS = "Rotation key database directory already exists"
# [I] the remediation texts themselves were not found in PSMDB's source
ROTATION_WITHOUT_KEY_DB_REMEDIATIONS = (
    "If the data directory is new, start mongod without `--kmipRotateMasterKey` and "
    "`security.kmip.rotateMasterKey` first: there is no master key to rotate yet.",
    "If the data directory should hold encrypted data, check `--dbpath` / `storage.dbPath`: the encryption key "
    "database must be in its `key.db` subdirectory.",
)
READ_FAILED = "reading the master key from the KMIP server failed: "
SAVE_FAILED = "saving the master key to the KMIP server failed: "
GET_STATE_FAILED = "retrieving the state of the master key on the KMIP server failed: "
KEY_FILE_READ_FAILED = "reading the master key from the encryption key file failed: "


class KeyOperationError(Exception):
    """PSMDB's ``KeyErrorBuilder(...).error()``: ``{what: "key <operation> failed", reason, ...}``."""

    def __init__(self, operation: str, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.document: dict[str, Any] = {"what": f"key {operation} failed", "reason": reason, **fields}


class EncryptionError(Exception):
    """A refusal mongod reports as fatal 29120 "Data-at-Rest Encryption Error" (``attr.error``), exit 1001."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(str(document.get("what", "")))
        self.document = document

    def to_document(self) -> dict[str, Any]:
        return copy.deepcopy(self.document)

    @property
    def key_error(self) -> dict[str, Any]:
        """The innermost document whose ``reason`` is a text (what a person would read first)."""
        node = self.document
        while isinstance(node.get("reason"), dict):
            node = node["reason"]
        return node


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


def _key_fields(uid: str) -> dict[str, Any]:
    return {"keyManagementFacilityType": KMIP_FACILITY, "keyIdentifier": _kmip_id(uid)}


def start_storage(options: Options, logger: Logger) -> StartedStorage:
    db_path = Path(options.storage.db_path)
    metadata = storage.read_storage_metadata(db_path)
    stored = storage.stored_encryption(metadata)
    has_key_db = (db_path / storage.KEYSTORE_DIR).exists()  # PSMDB looks for the directory
    data = storage.data_file_kinds(db_path)
    security = options.security

    if not security.enable_encryption:
        if stored is not None or has_key_db or "encrypted" in data:
            raise StorageEngineError(
                "the data files are encrypted but encryption is not enabled; start mongod with the same "
                "security.enableEncryption settings the data was created with"
            )
        store = storage.PlainDataStore(db_path)
        _verify(store)
        if metadata is None:
            storage.write_storage_metadata(db_path, None)
        return StartedStorage(store)

    if "plain" in data and not has_key_db:
        raise StorageEngineError("the existing data files are not encrypted; encryption cannot be enabled on them")

    key_db_dir = str(db_path / storage.KEYSTORE_DIR)
    try:
        if security.kmip.enabled:
            return _start_kmip(options, logger, db_path, stored, has_key_db)
        if security.encryption_key_file:
            return _start_key_file(options, logger, db_path, metadata, has_key_db)
    except KeyOperationError as exc:
        # the engine wraps key errors met while opening (or creating) key.db
        raise EncryptionError(
            {"what": WHAT_CREATE_KEY_DB, "reason": exc.document, "encryptionKeyDatabaseDirectory": key_db_dir}
        ) from None
    raise EncryptionError({"what": "encryption start-up failed", "reason": "Vault is not emulated"})


def _verify(store: storage.PlainDataStore | storage.EncryptedDataStore) -> None:
    try:
        store.verify_all()
    except storage.DecryptionError as exc:
        raise EncryptionError({"what": "failed to decrypt the data files", "reason": str(exc)}) from exc
    except storage.StorageError as exc:
        raise StorageEngineError(str(exc)) from exc


def _open_keystore(
    logger: Logger,
    db_path: Path,
    master_key: bytes,
    cipher_mode: str,
    key_id_document: dict[str, Any] | str,
    *,
    create: bool,
) -> storage.EncryptedDataStore:
    keystore_dir = db_path / storage.KEYSTORE_DIR
    try:
        if create:
            keystore = storage.Keystore.create(keystore_dir, master_key, cipher_mode)
        else:
            keystore = storage.Keystore.open(keystore_dir, master_key, cipher_mode)
    except (storage.StorageError, OSError) as exc:
        raise _key_db_open_error(keystore_dir, exc) from exc
    logger.log("I", "STORAGE", 29039, "Encryption keys DB is initialized successfully")
    store = storage.EncryptedDataStore(db_path, keystore, key_id_document)
    if create and storage.data_file_kinds(db_path):
        # a fresh keystore cannot hold the keys of existing encrypted data (e.g. key.db lost in a
        # crash between the rotation renames): WiredTiger fails to open those tables
        raise StorageEngineError(
            f"the data files in {db_path} are encrypted with database keys that the new encryption key database "
            f"{keystore_dir} does not hold"
        )
    _verify(store)
    return store


def _key_db_open_error(keystore_dir: Path, exc: Exception) -> EncryptionError:
    # [I] PSMDB's inner document for a keystore its master key cannot open was not found
    reason = f"{exc.strerror or type(exc).__name__}: {exc.filename}" if isinstance(exc, OSError) else str(exc)
    return EncryptionError(
        {
            "what": WHAT_CREATE_KEY_DB,
            "reason": {"what": "failed to open the encryption keys DB", "reason": reason},
            "encryptionKeyDatabaseDirectory": str(keystore_dir),
        }
    )


# -- KMIP --------------------------------------------------------------------------------------


def _start_kmip(
    options: Options, logger: Logger, db_path: Path, stored: dict[str, Any] | None, has_key_db: bool
) -> StartedStorage:
    kmip = options.security.kmip
    connector = KmipConnector(kmip, logger)
    provided = kmip.key_identifier or None  # PSMDB ignores an empty keyIdentifier
    configured = storage.stored_kmip_key_id({"options": {"encryption": stored}}) if stored else None

    if not has_key_db:
        # a new key.db: PSMDB obtains a key (the provided one, or a new one it registers) and
        # does not look at storage.bson for it
        if kmip.rotate_master_key:
            raise EncryptionError(
                {
                    "what": MSG_ROTATION_WITHOUT_KEY_DB,
                    "dbPath": str(db_path),
                    "encryptionKeyDatabaseDirectory": str(db_path / storage.KEYSTORE_DIR),
                    "possibleRemediationActions": list(ROTATION_WITHOUT_KEY_DB_REMEDIATIONS),
                }
            )
        if provided is not None:
            master_key, poll = _read_for_use(connector, logger, provided, kmip)
            key_id = provided
        else:
            master_key = generate_master_key()
            key_id = _register(connector, logger, master_key, activate=kmip.activate_keys)
            poll = kmip.activate_keys
        return _kmip_storage(options, logger, db_path, master_key, key_id, poll, create=True, configured=configured)

    # an existing key.db: read the configured key (storage.bson), PSMDB's createRead(configured)
    if stored is not None and "vault" in stored:
        raise KeyOperationError(OP_READ, MSG_VAULT_DATA)
    if kmip.rotate_master_key:
        if configured is None:
            raise KeyOperationError(OP_READ, MSG_KEYFILE_DATA)
        if provided is not None and provided == configured:
            raise KeyOperationError(
                OP_READ, MSG_ROTATION_SAME_ID, configured=_kmip_id(configured), provided=_kmip_id(provided)
            )
        _rotate(options, logger, connector, db_path, configured)
    if configured is not None:
        if provided is not None and provided != configured:
            raise KeyOperationError(
                OP_READ, MSG_KEY_ID_MISMATCH, configured=_kmip_id(configured), provided=_kmip_id(provided)
            )
        key_id = configured
    elif provided is not None:
        # data encrypted with a key file: the provided KMIP key opens it only if it is the same key
        key_id = provided
    else:
        raise KeyOperationError(OP_READ, MSG_KEYFILE_DATA)
    master_key, poll = _read_for_use(connector, logger, key_id, kmip)
    return _kmip_storage(options, logger, db_path, master_key, key_id, poll, create=False, configured=configured)


def _kmip_storage(
    options: Options,
    logger: Logger,
    db_path: Path,
    master_key: bytes,
    key_id: str,
    poll: bool,
    *,
    create: bool,
    configured: str | None,
) -> StartedStorage:
    """Open (or create) key.db with the master key; storage.bson then names the key if it did not."""
    key_id_document = {"kmip": {"keyId": key_id}}
    store = _open_keystore(
        logger, db_path, master_key, options.security.encryption_cipher_mode, key_id_document, create=create
    )
    if configured != key_id:
        storage.replace_storage_encryption(db_path, key_id_document)
    poll = poll and options.security.kmip.key_state_polling_seconds > 0
    return StartedStorage(store, key_id=key_id, poll_key_state=poll)


def _register(connector: KmipConnector, logger: Logger, master_key: bytes, *, activate: bool) -> str:
    """Register (+ Activate) in one session, then 29116."""

    def register(session: KmipSession) -> str:
        uid = session.register_symmetric_key(master_key)
        if activate:
            session.activate(uid)
        return uid

    try:
        uid = connector.run(register)
    except KmipUnreachableError as exc:
        raise KeyOperationError(OP_SAVE, SAVE_FAILED + str(exc)) from None
    logger.log("I", "STORAGE", 29116, MSG_KEY_CREATED, _key_fields(uid))
    return uid


def _read_for_use(connector: KmipConnector, logger: Logger, uid: str, kmip: KmipOptions) -> tuple[bytes, bool]:
    """Read a key mongod will encrypt with; returns it and whether key-state polling applies."""
    master_key, tolerated_pre_active = _read_key(
        connector, logger, uid, verify_state=kmip.activate_keys, strict=kmip.activate_keys_explicit
    )
    return master_key, kmip.activate_keys and not tolerated_pre_active


def _read_key(
    connector: KmipConnector, logger: Logger, uid: str, *, verify_state: bool, strict: bool
) -> tuple[bytes, bool]:
    """PSMDB's ReadKmipKey: GetAttributes(State) then Get in one session (Get only without state check).

    Logs 29115 (and 29124 for a tolerated Pre-Active key). Returns the key and whether a
    Pre-Active key was tolerated (7.0.14-8 with activateKeys unset, ``strict`` False).
    """

    def read(session: KmipSession) -> tuple[KeyState | None, bytes | None]:
        state: KeyState | None = None
        if verify_state:
            state = session.get_state(uid)
            if state.absent:
                return state, None
            if not state.active and (strict or state.name != "Pre-Active"):
                return state, None
        return state, session.get_symmetric_key(uid)

    try:
        state, key = connector.run(read)
    except KmipUnreachableError as exc:
        raise KeyOperationError(OP_READ, READ_FAILED + str(exc)) from None
    if key is None and state is not None and not state.absent:
        raise KeyOperationError(OP_READ, MSG_KEY_NOT_ACTIVE, **_key_fields(uid), keyState=state.name)
    if key is None:
        raise KeyOperationError(OP_READ, MSG_KEY_ABSENT, **_key_fields(uid))
    logger.log("I", "STORAGE", 29115, MSG_KEY_READ, _key_fields(uid))
    tolerated = state is not None and not state.active
    if tolerated:
        logger.log("W", "STORAGE", 29124, MSG_PRE_ACTIVE, _key_fields(uid))
    return key, tolerated


def _rotate(options: Options, logger: Logger, connector: KmipConnector, db_path: Path, old_id: str) -> None:
    """PSMDB's rotation, in its order (psmdb-kmip.md s.4); ends with MasterKeyRotationCompleted.

    Nothing is registered on the KMIP server before the keystore has been cloned, so a rotation
    that fails before that leaves no orphan key; ``key.db.rotation`` is removed on any failure.
    """
    kmip = options.security.kmip
    cipher_mode = options.security.encryption_cipher_mode
    # 1. the old key: Get only, it may already be deactivated
    old_key, _ = _read_key(connector, logger, old_id, verify_state=False, strict=True)
    keystore_dir = db_path / storage.KEYSTORE_DIR
    try:
        keystore = storage.Keystore.open(keystore_dir, old_key, cipher_mode)
    except (storage.StorageError, OSError) as exc:
        raise _key_db_open_error(keystore_dir, exc) from exc
    logger.log("I", "STORAGE", 29039, "Encryption keys DB is initialized successfully")
    # 2. a leftover key.db.rotation (an interrupted rotation) is refused, never reused
    rotation_dir = db_path / storage.ROTATION_DIR
    if rotation_dir.exists():
        raise EncryptionError(
            {
                "what": WHAT_ROTATE,
                "reason": {"what": MSG_ROTATION_DIR_EXISTS, "rotationKeyDatabaseDirectory": str(rotation_dir)},
            }
        )
    # 3. key.db.rotation, removed again on any failure until the swap
    rotation_dir.mkdir(mode=0o700)
    try:
        # 4. the new key: the provided one read, or a new one generated and NOT yet registered
        provided = kmip.key_identifier or None
        if provided is not None:
            new_key, _ = _read_key(
                connector, logger, provided, verify_state=kmip.activate_keys, strict=kmip.activate_keys_explicit
            )
        else:
            new_key = generate_master_key()
        # 5. clone the keystore under the new key
        keystore.clone_into(rotation_dir, new_key, midway=_hook("rotation-clone", logger))
        testhooks.reached("rotation-register", logger)
        # 6. only now register a generated key (29116)
        new_id = provided or _register(connector, logger, new_key, activate=kmip.activate_keys)
    except KeyOperationError as exc:
        shutil.rmtree(rotation_dir, ignore_errors=True)
        raise EncryptionError({"what": WHAT_ROTATE, "reason": exc.document}) from None
    except BaseException:
        shutil.rmtree(rotation_dir, ignore_errors=True)
        raise
    # 7. key.db -> key.db.rotated, key.db.rotation -> key.db
    storage.swap_rotated_keystore(db_path, between_renames=_hook("rotation-swap", logger))
    testhooks.reached("rotation-metadata", logger)
    # 8. storage.bson names the new key (other options kept), then 29111; mongod exits cleanly
    storage.replace_storage_encryption(db_path, {"kmip": {"keyId": new_id}})
    logger.log(
        "I",
        "STORAGE",
        29111,
        "Rotated master encryption key",
        {"oldKeyIdentifier": _kmip_id(old_id), "newKeyIdentifier": _kmip_id(new_id)},
    )
    raise MasterKeyRotationCompleted(old_id, new_id)


def _hook(step: str, logger: Logger) -> Callable[[], None]:
    return lambda: testhooks.reached(step, logger)


# -- key file ----------------------------------------------------------------------------------


def _start_key_file(
    options: Options, logger: Logger, db_path: Path, metadata: dict[str, Any] | None, has_key_db: bool
) -> StartedStorage:
    """``security.encryptionKeyFile``: the keystore under the file's key; nothing in storage.bson.

    PSMDB reads the key file whatever storage.bson names (KMIP or Vault data open too when the
    file holds the same key), and never writes a key file path into storage.bson.
    """
    path = options.security.encryption_key_file
    assert path is not None
    master_key = _read_key_file(path)
    logger.log(
        "I",
        "STORAGE",
        29115,
        MSG_KEY_READ,
        {"keyManagementFacilityType": KEY_FILE_FACILITY, "keyIdentifier": {"encryptionKeyFilePath": path}},
    )
    store = _open_keystore(
        logger, db_path, master_key, options.security.encryption_cipher_mode, "local", create=not has_key_db
    )
    if metadata is None:
        storage.write_storage_metadata(db_path, None)
    return StartedStorage(store)


def _read_key_file(path: str) -> bytes:
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyOperationError(OP_READ, f"{KEY_FILE_READ_FAILED}permissions on {path} are too open")
        with open(path, "rb") as handle:
            master_key = base64.b64decode(handle.read().strip(), validate=True)
    except KeyOperationError:
        raise
    except (OSError, ValueError) as exc:
        raise KeyOperationError(
            OP_READ, f"{KEY_FILE_READ_FAILED}cannot read the encryption key file {path}: {type(exc).__name__}"
        ) from None
    if len(master_key) != storage.KEY_BYTES:
        raise KeyOperationError(OP_READ, f"{KEY_FILE_READ_FAILED}the encryption key in {path} is not 256 bits long")
    return master_key


# -- key-state polling -------------------------------------------------------------------------


class KeyStateMonitor:
    """PSMDB's periodic job "KeyStateMonitor": GetAttributes(State) at once, then every period.

    Absent (29121) or not Active (29122): shutdown with 1001. Unreachable (29123): keep running.
    """

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
            # a poll in flight finishes within its sessions' timers; don't wait forever for it
            self._thread.join(timeout=60.0)

    def poll_once(self) -> KeyState | None:
        """One poll; returns the state, or None when the KMIP servers were unreachable."""
        try:
            state = self._connector.run(lambda session: session.get_state(self._key_id))
        except KmipUnreachableError as exc:
            error = {"what": f"key {OP_GET_STATE} failed", "reason": GET_STATE_FAILED + str(exc)}
            self._logger.log("E", "STORAGE", 29123, "Data-at-Rest Encryption Error", {"error": error})
            return None
        if state.absent:
            self._logger.log("E", "STORAGE", 29121, MSG_KEY_ABSENT_POLL, _key_fields(self._key_id))
            self._shutdown.request(EXIT_ENCRYPTION_ERROR, MSG_KEY_ABSENT_POLL)
        elif not state.active:
            self._logger.log(
                "E", "STORAGE", 29122, MSG_KEY_NOT_ACTIVE, {**_key_fields(self._key_id), "keyState": state.name}
            )
            self._shutdown.request(EXIT_ENCRYPTION_ERROR, MSG_KEY_NOT_ACTIVE)
        return state

    def _run(self) -> None:
        # MongoDB's PeriodicRunner runs a job as soon as it starts, then once per period
        while not self._shutdown.requested:
            try:
                self.poll_once()
            except Exception as exc:  # a bug here must not kill the process silently
                self._logger.log("E", "STORAGE", 29123, "Data-at-Rest Encryption Error", {"error": repr(exc)})
            if self._stop.wait(self._period):
                return
