# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""What a mongod dbPath already holds: ``storage.bson`` and WiredTiger files.

mongod writes ``<dbPath>/storage.bson`` on first start. On an encrypted node it holds
``storage.options.encryption``; with KMIP the master key id is at
``storage.options.encryption.kmip.keyId`` (PSMDB ``encryption/key_id.cpp``). A dbPath with
WiredTiger files but no encryption options holds unencrypted data, which turning encryption
on cannot convert: mongod would refuse to start.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError

with PYMONGO.importing():
    import bson  # part of pymongo

#: mongod's compiled-in default (the Percona packages set /var/lib/mongodb or /var/lib/mongo in mongod.conf)
DEFAULT_DB_PATH = "/data/db"
STORAGE_BSON = "storage.bson"
_WIREDTIGER_MARKERS = ("WiredTiger", "WiredTiger.wt", "WiredTiger.turtle", "_mdb_catalog.wt")


@dataclasses.dataclass
class DbPathState:
    db_path: str
    exists: bool = False
    storage_bson: bool = False
    encryption: dict[str, Any] | None = None
    data_files: bool = False

    @property
    def encryption_kind(self) -> str | None:
        """``kmip``, ``vault``, ``keyfile`` or ``None`` for unencrypted (or empty) data."""
        if not self.encryption:
            return None
        if "kmip" in self.encryption:
            return "kmip"
        if "vault" in self.encryption:
            return "vault"
        return "keyfile"

    @property
    def kmip_key_id(self) -> str | None:
        kmip = (self.encryption or {}).get("kmip")
        if isinstance(kmip, dict) and kmip.get("keyId") is not None:
            return str(kmip["keyId"])
        return None

    @property
    def holds_unencrypted_data(self) -> bool:
        return self.encryption is None and (self.storage_bson or self.data_files)


def inspect_db_path(db_path: str) -> DbPathState:
    """Read what is there; a missing dbPath is a fresh node, not an error."""
    state = DbPathState(db_path=db_path)
    if not os.path.isdir(db_path):
        return state
    state.exists = True
    try:
        names = set(os.listdir(db_path))
    except OSError as exc:
        raise InvalidOptionError("db_path", f"cannot list {db_path}: {exc.strerror}") from None
    state.data_files = any(name in names for name in _WIREDTIGER_MARKERS) or any(name.endswith(".wt") for name in names)
    if STORAGE_BSON in names:
        state.storage_bson = True
        state.encryption = read_storage_encryption(os.path.join(db_path, STORAGE_BSON))
    return state


def read_storage_encryption(path: str) -> dict[str, Any] | None:
    """``storage.options.encryption`` of a storage.bson, or ``None`` when absent."""
    PYMONGO.require()
    try:
        with open(path, "rb") as handle:
            document = bson.decode(handle.read())
    except OSError as exc:
        raise InvalidOptionError("db_path", f"cannot read {path}: {exc.strerror}") from None
    except (bson.errors.BSONError, ValueError, IndexError, OverflowError) as exc:
        # the decoder's text may quote bytes of the file: say only what kind of failure it was
        raise InvalidOptionError(
            "db_path", f"{path} is not a valid BSON document ({type(exc).__name__}); restore it or resync the member"
        ) from None
    encryption = document
    for key in ("storage", "options", "encryption"):
        encryption = encryption.get(key)
        if encryption is None:
            return None
        if not isinstance(encryption, dict):
            raise InvalidOptionError(
                "db_path",
                f"{path} is not a storage.bson mongod wrote: {_field_path(key)} is a {_bson_type(encryption)}, not a "
                "document. Restore the file from the member's backup, or resync the member",
            )
    if not encryption:
        return None
    kmip = encryption.get("kmip")
    if kmip is not None and not isinstance(kmip, dict):
        raise InvalidOptionError(
            "db_path",
            f"{path} is not a storage.bson mongod wrote: storage.options.encryption.kmip is a {_bson_type(kmip)}, "
            "not a document. Restore the file from the member's backup, or resync the member",
        )
    return dict(encryption)


def _field_path(key: str) -> str:
    return {"storage": "storage", "options": "storage.options", "encryption": "storage.options.encryption"}[key]


def _bson_type(value: object) -> str:
    """The BSON type name of a decoded value (never the value: storage.bson is not shown)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, (bytes, bytearray)):
        return "binary"
    return type(value).__name__


def check_encryption_change(
    state: DbPathState,
    *,
    enable: bool,
    key_identifier: str | None = None,
    current_cipher_mode: str,
    wanted_cipher_mode: str | None = None,
) -> None:
    """Refuse what mongod would refuse on this dbPath (or what needs a rotation/initial sync).

    ``current_cipher_mode`` is the effective mode of the existing mongod.conf, which is what
    encrypted data was written with; ``wanted_cipher_mode`` the effective mode to write.
    """
    where = state.db_path
    kind = state.encryption_kind
    if not enable:
        if kind is not None:
            raise InvalidOptionError(
                "state",
                f"absent would turn encryption off, but the data in {where} is encrypted ({kind}); mongod cannot "
                "start on it without the key. Decrypt by a rolling initial sync onto unencrypted members instead",
            )
        return
    if kind in ("vault", "keyfile"):
        what = "HashiCorp Vault" if kind == "vault" else "a local key file"
        raise InvalidOptionError(
            "state",
            f"the data in {where} is encrypted with {what} (storage.bson); PSMDB cannot switch it to KMIP in place. "
            "Re-encrypt it by a rolling initial sync: empty one member at a time and let it resync with KMIP",
        )
    if kind is None and state.holds_unencrypted_data:
        raise InvalidOptionError(
            "state",
            f"{where} already holds unencrypted data ("
            + ("storage.bson without encryption options" if state.storage_bson else "WiredTiger files")
            + "); mongod encrypts only data it writes from an empty dbPath and would refuse to start. Existing data is "
            "encrypted by a rolling initial sync: stop one secondary at a time, empty its dbPath, write this "
            "configuration, start it and let it resync (playbook enable_kmip_encryption + your resync procedure)",
        )
    if kind == "kmip":
        stored = state.kmip_key_id
        if key_identifier is not None and stored is not None and key_identifier != stored:
            raise InvalidOptionError(
                "key_identifier",
                f"the data in {where} is encrypted with the KMIP master key {stored!r} (storage.bson), not "
                f"{key_identifier!r}. Using another key is a master key rotation, a one-shot mongod run "
                "(kmipRotateMasterKey) done by the rotation playbook, not a configuration change. Omit "
                f"key_identifier or set it to {stored!r}",
            )
        if wanted_cipher_mode is not None and wanted_cipher_mode != current_cipher_mode:
            raise InvalidOptionError(
                "cipher_mode",
                f"the data in {where} is encrypted with {current_cipher_mode} (the cipher mode of the current "
                f"mongod.conf) and mongod cannot switch existing data to {wanted_cipher_mode}. Keep "
                f"{current_cipher_mode}, or re-encrypt by a rolling initial sync",
            )
