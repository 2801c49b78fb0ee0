"""On-disk layout of an emulated dbPath: storage.bson, the keystore (key.db) and data files.

Layout (mirrors what PSMDB keeps, not WiredTiger's file format):

- ``<dbPath>/storage.bson``: BSON ``{storage: {engine: "wiredTiger", options: {...}}}``; with
  KMIP encryption ``options.encryption.kmip.keyId`` holds the master key id (psmdb-kmip.md s.3).
  Data encrypted with a key file has NO encryption options there (PSMDB never serialises a key
  file path into the storage engine metadata): only ``key.db`` tells it from plain data.
- ``<dbPath>/key.db/keystore.wt``: the per-database keys, BSON encrypted with the master key.
- ``<dbPath>/databases/<name>.wt``: one blob per database, encrypted with that database's key.

Every encrypted blob carries an integrity check (GCM's tag, or a SHA-256 inside the CBC
payload, standing in for WiredTiger's block checksums), so a wrong key is always detected
instead of yielding garbage.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

STORAGE_BSON = "storage.bson"
KEYSTORE_DIR = "key.db"
ROTATION_DIR = "key.db.rotation"
ROTATED_DIR = "key.db.rotated"
KEYSTORE_FILE = "keystore.wt"
DATA_DIR = "databases"
DATA_SUFFIX = ".wt"

CIPHER_CBC = "AES256-CBC"
CIPHER_GCM = "AES256-GCM"
CIPHER_MODES = (CIPHER_CBC, CIPHER_GCM)
KEY_BYTES = 32

# serverStatus().encryptionAtRest exists only in builds with PSMDB-1633 (2025), not in 7.0.14-8:
# this variable (test-only) makes the emulator behave like such a newer build.
ENCRYPTION_STATUS_ENV = "PSMDB_EMULATOR_ENCRYPTION_STATUS"

_PLAIN_MAGIC = b"PSMDBEMU-PLAIN1\n"
_ENCRYPTED_MAGIC = b"PSMDBEMU-ENCRY1\n"
_KEYSTORE_MAGIC = b"PSMDBEMU-KEYDB1\n"
_SHA256_BYTES = 32


class StorageError(Exception):
    """The dbPath cannot be used as configured (corrupt file, encrypted data without a key...)."""


class DecryptionError(StorageError):
    """A blob did not decrypt with the given key: wrong key, wrong cipher mode or corruption."""


# -- ciphers --------------------------------------------------------------------------------


def encrypt_blob(key: bytes, cipher_mode: str, plaintext: bytes) -> bytes:
    """AES-256 in the configured mode; the result carries its nonce/IV and an integrity check."""
    _check_key(key)
    if cipher_mode == CIPHER_GCM:
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, None)
    if cipher_mode == CIPHER_CBC:
        iv = secrets.token_bytes(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(hashlib.sha256(plaintext).digest() + plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        return iv + encryptor.update(padded) + encryptor.finalize()
    raise ValueError(f"unknown cipher mode {cipher_mode!r}")


def decrypt_blob(key: bytes, cipher_mode: str, blob: bytes) -> bytes:
    """Inverse of ``encrypt_blob``; raises ``DecryptionError`` (never with key bytes in the text)."""
    _check_key(key)
    if cipher_mode == CIPHER_GCM:
        if len(blob) < 12 + 16:
            raise DecryptionError("encrypted block is truncated")
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], None)
        except Exception as exc:  # InvalidTag: wrong key or corruption
            raise DecryptionError("authentication tag mismatch (wrong key or corrupted data)") from exc
    if cipher_mode == CIPHER_CBC:
        if len(blob) < 32 or len(blob) % 16:
            raise DecryptionError("encrypted block has an invalid length")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(blob[:16])).decryptor()
        padded = decryptor.update(blob[16:]) + decryptor.finalize()
        try:
            unpadder = padding.PKCS7(128).unpadder()
            payload = unpadder.update(padded) + unpadder.finalize()
        except ValueError as exc:
            raise DecryptionError("checksum mismatch (wrong key or corrupted data)") from exc
        digest, plaintext = payload[:_SHA256_BYTES], payload[_SHA256_BYTES:]
        if len(digest) != _SHA256_BYTES or hashlib.sha256(plaintext).digest() != digest:
            raise DecryptionError("checksum mismatch (wrong key or corrupted data)")
        return plaintext
    raise ValueError(f"unknown cipher mode {cipher_mode!r}")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"an AES-256 key has {KEY_BYTES} bytes, got {len(key)}")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write-then-rename so a crash never leaves a half-written file behind."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- storage.bson ----------------------------------------------------------------------------


def read_storage_metadata(db_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``storage`` document of ``<dbPath>/storage.bson``, or None when the file is absent."""
    path = Path(db_path) / STORAGE_BSON
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document = bson.decode(raw)
    except Exception as exc:
        raise StorageError(f"{path} is not a valid BSON document: {exc}") from exc
    storage = document.get("storage")
    if not isinstance(storage, dict):
        raise StorageError(f"{path} has no 'storage' document")
    return storage


def write_storage_metadata(db_path: str | os.PathLike[str], encryption: dict[str, Any] | None) -> None:
    """Write storage.bson as PSMDB does: engine wiredTiger, encryption options for KMIP/Vault only."""
    options: dict[str, Any] = {"directoryPerDB": False, "directoryForIndexes": False}
    if encryption is not None:
        options["encryption"] = encryption
    document = {"storage": {"engine": "wiredTiger", "options": options}}
    _write_atomically(Path(db_path) / STORAGE_BSON, bson.encode(document))


def replace_storage_encryption(db_path: str | os.PathLike[str], encryption: dict[str, Any]) -> None:
    """PSMDB's writeMetadata for a new key id: existing options kept, ``encryption`` replaced."""
    storage = read_storage_metadata(db_path)
    if storage is None:
        write_storage_metadata(db_path, encryption)
        return
    options = {key: value for key, value in (storage.get("options") or {}).items() if key != "encryption"}
    options["encryption"] = encryption
    document = {"storage": {**storage, "options": options}}
    _write_atomically(Path(db_path) / STORAGE_BSON, bson.encode(document))


def stored_encryption(storage: dict[str, Any] | None) -> dict[str, Any] | None:
    """``storage.options.encryption`` of a storage document, or None when data is not encrypted."""
    if storage is None:
        return None
    options = storage.get("options") or {}
    encryption = options.get("encryption")
    return encryption if isinstance(encryption, dict) and encryption else None


def stored_kmip_key_id(storage: dict[str, Any] | None) -> str | None:
    encryption = stored_encryption(storage) or {}
    kmip = encryption.get("kmip")
    if isinstance(kmip, dict) and isinstance(kmip.get("keyId"), str):
        return kmip["keyId"]
    return None


# -- keystore ---------------------------------------------------------------------------------


class Keystore:
    """Per-database keys, persisted in ``<dir>/keystore.wt`` encrypted with the master key."""

    def __init__(self, directory: Path, master_key: bytes, cipher_mode: str, keys: dict[str, bytes]) -> None:
        self.directory = directory
        self._master_key = master_key
        self.cipher_mode = cipher_mode
        self._keys = keys
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show key material
        return f"Keystore({str(self.directory)!r}, cipher_mode={self.cipher_mode!r}, databases={len(self._keys)})"

    @staticmethod
    def exists(directory: Path) -> bool:
        return (directory / KEYSTORE_FILE).is_file()

    @classmethod
    def create(cls, directory: Path, master_key: bytes, cipher_mode: str) -> Keystore:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        keystore = cls(directory, master_key, cipher_mode, {})
        keystore._save()
        return keystore

    @classmethod
    def open(cls, directory: Path, master_key: bytes, cipher_mode: str) -> Keystore:
        path = directory / KEYSTORE_FILE
        raw = path.read_bytes()
        if not raw.startswith(_KEYSTORE_MAGIC):
            raise StorageError(f"{path} is not an encryption keystore")
        try:
            plaintext = decrypt_blob(master_key, cipher_mode, raw[len(_KEYSTORE_MAGIC) :])
        except DecryptionError as exc:
            raise DecryptionError(f"cannot decrypt the encryption keys DB {path}: {exc}") from exc
        document = bson.decode(plaintext)
        keys = {name: bytes(value) for name, value in (document.get("keys") or {}).items()}
        return cls(directory, master_key, cipher_mode, keys)

    def _serialise(self, master_key: bytes) -> bytes:
        document = {"version": 1, "keys": {name: bson.Binary(value) for name, value in self._keys.items()}}
        return _KEYSTORE_MAGIC + encrypt_blob(master_key, self.cipher_mode, bson.encode(document))

    def _save(self) -> None:
        _write_atomically(self.directory / KEYSTORE_FILE, self._serialise(self._master_key))

    def database_key(self, name: str, *, create: bool) -> bytes | None:
        with self._lock:
            key = self._keys.get(name)
            if key is None and create:
                key = secrets.token_bytes(KEY_BYTES)
                self._keys[name] = key
                self._save()
            return key

    def forget(self, name: str) -> None:
        with self._lock:
            if self._keys.pop(name, None) is not None:
                self._save()

    def database_names(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)

    def clone_into(self, destination: Path, new_master_key: bytes, midway: Callable[[], None] | None = None) -> None:
        """Clone this keystore into the existing ``destination`` under a new master key.

        The database keys themselves are unchanged, as in PSMDB: only the keystore is
        re-encrypted. The file is written in two halves and ``midway`` runs between them, so a
        process killed during the clone leaves a partial ``key.db.rotation`` as WiredTiger would.
        """
        with self._lock:
            blob = self._serialise(new_master_key)
        half = len(blob) // 2
        with open(destination / KEYSTORE_FILE, "wb") as handle:
            handle.write(blob[:half])
            handle.flush()
            os.fsync(handle.fileno())
            if midway is not None:
                midway()
            handle.write(blob[half:])
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(destination)


def swap_rotated_keystore(db_path: Path, between_renames: Callable[[], None] | None = None) -> None:
    """key.db -> key.db.rotated (replacing an older backup), key.db.rotation -> key.db.

    ``between_renames`` runs after the first rename: a crash there leaves no ``key.db`` at all.
    """
    rotated = db_path / ROTATED_DIR
    if rotated.exists():
        shutil.rmtree(rotated)
    os.rename(db_path / KEYSTORE_DIR, rotated)
    _fsync_dir(db_path)
    if between_renames is not None:
        between_renames()
    os.rename(db_path / ROTATION_DIR, db_path / KEYSTORE_DIR)
    _fsync_dir(db_path)


def encryption_status_in_server_status() -> bool:
    """Whether the emulated build has ``serverStatus().encryptionAtRest`` (off for 7.0.14-8)."""
    return os.environ.get(ENCRYPTION_STATUS_ENV) == "1"


# -- data stores (psmdb_emulator.contracts.DataStore) -----------------------------------------


def data_file_kinds(db_path: str | os.PathLike[str]) -> set[str]:
    """ "plain" / "encrypted" for the database files present (by their header); empty without data."""
    data_dir = Path(db_path) / DATA_DIR
    kinds: set[str] = set()
    if not data_dir.is_dir():
        return kinds
    for entry in data_dir.iterdir():
        if not (entry.is_file() and entry.name.endswith(DATA_SUFFIX)):
            continue
        with open(entry, "rb") as handle:
            header = handle.read(len(_PLAIN_MAGIC))
        kinds.add("encrypted" if header == _ENCRYPTED_MAGIC else "plain" if header == _PLAIN_MAGIC else "unknown")
    return kinds


def _data_file(db_path: Path, name: str) -> Path:
    if not name:
        raise ValueError("a database name cannot be empty")
    return db_path / DATA_DIR / (urllib.parse.quote(name, safe="") + DATA_SUFFIX)


class _FileDataStore:
    """Shared file handling; subclasses decide how the bytes are sealed on disk."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = Path(db_path)
        (self.db_path / DATA_DIR).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def list_dbs(self) -> list[str]:
        names = []
        for entry in (self.db_path / DATA_DIR).iterdir():
            if entry.is_file() and entry.name.endswith(DATA_SUFFIX):
                names.append(urllib.parse.unquote(entry.name[: -len(DATA_SUFFIX)]))
        return sorted(names)

    def read_db(self, name: str) -> bytes | None:
        with self._lock:
            try:
                raw = _data_file(self.db_path, name).read_bytes()
            except FileNotFoundError:
                return None
            return self._unseal(name, raw)

    def write_db(self, name: str, data: bytes) -> None:
        with self._lock:
            _write_atomically(_data_file(self.db_path, name), self._seal(name, bytes(data)))

    def drop_db(self, name: str) -> None:
        with self._lock:
            _data_file(self.db_path, name).unlink(missing_ok=True)
            self._forget(name)

    def verify_all(self) -> None:
        """Read every database once, as WiredTiger does when it opens its tables at start-up."""
        for name in self.list_dbs():
            self.read_db(name)

    def _seal(self, name: str, data: bytes) -> bytes:
        raise NotImplementedError

    def _unseal(self, name: str, raw: bytes) -> bytes:
        raise NotImplementedError

    def _forget(self, name: str) -> None:
        return None


class PlainDataStore(_FileDataStore):
    """No encryption (enableEncryption off). Refuses to read data written encrypted."""

    def _seal(self, name: str, data: bytes) -> bytes:
        return _PLAIN_MAGIC + data

    def _unseal(self, name: str, raw: bytes) -> bytes:
        if raw.startswith(_ENCRYPTED_MAGIC):
            raise StorageError(f"database {name!r} is encrypted but encryption is not enabled")
        if not raw.startswith(_PLAIN_MAGIC):
            raise StorageError(f"database {name!r}: unknown file format")
        return raw[len(_PLAIN_MAGIC) :]

    def encryption_status(self) -> dict[str, Any] | None:
        return {"encryptionEnabled": False} if encryption_status_in_server_status() else None


class EncryptedDataStore(_FileDataStore):
    """Each database sealed with its own key from the keystore (itself sealed by the master key)."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        keystore: Keystore,
        key_id_document: dict[str, Any] | str | None,
    ) -> None:
        super().__init__(db_path)
        self.keystore = keystore
        # serverStatus().encryptionAtRest.encryptionKeyId: {kmip: {keyId}} or "local" (keyfile)
        self._key_id_document = key_id_document

    @property
    def cipher_mode(self) -> str:
        return self.keystore.cipher_mode

    def _seal(self, name: str, data: bytes) -> bytes:
        key = self.keystore.database_key(name, create=True)
        assert key is not None
        return _ENCRYPTED_MAGIC + encrypt_blob(key, self.cipher_mode, data)

    def _unseal(self, name: str, raw: bytes) -> bytes:
        if raw.startswith(_PLAIN_MAGIC):
            raise StorageError(f"database {name!r} is not encrypted but encryption is enabled")
        if not raw.startswith(_ENCRYPTED_MAGIC):
            raise StorageError(f"database {name!r}: unknown file format")
        key = self.keystore.database_key(name, create=False)
        if key is None:
            raise DecryptionError(f"no key for database {name!r} in the encryption keys DB")
        try:
            return decrypt_blob(key, self.cipher_mode, raw[len(_ENCRYPTED_MAGIC) :])
        except DecryptionError as exc:
            raise DecryptionError(f"database {name!r}: {exc}") from exc

    def _forget(self, name: str) -> None:
        self.keystore.forget(name)

    def encryption_status(self) -> dict[str, Any] | None:
        if not encryption_status_in_server_status():
            return None
        return {
            "encryptionEnabled": True,
            "encryptionCipherMode": self.cipher_mode,
            "encryptionKeyId": self._key_id_document,
        }
