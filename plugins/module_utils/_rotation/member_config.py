# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""What a member's mongod.conf says about its data, its log, its process and its master key.

Read through the collection's one mongod.conf model (``_mongod.conf.MongodConf``) and its one
``security`` model (``_mongod.security``, ``_kmip.settings``), so this file never parses YAML
itself. Every secret the file holds is collected in ``secrets`` for the modules to add to
``no_log_values``: PSMDB echoes the KMIP password in getCmdLineOpts and in log 21951.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, MutableMapping
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import MONGOD_KMIP_KEYS, KmipSettings
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import (
    DEFAULT_CIPHER_MODE,
    ROTATE_KEY,
    masked,
    to_plain,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import DEFAULT_DB_PATH

KEY_IDENTIFIER = MONGOD_KMIP_KEYS["key_identifier"]
#: mongod.conf options whose values are secrets (the TLS ones are ``redact: true`` in mongod, the
#: KMIP one is not in PSMDB)
SECRET_OPTIONS = (
    "security.kmip.clientCertificatePassword",
    "net.tls.certificateKeyFilePassword",
    "net.tls.clusterPassword",
    "net.ssl.PEMKeyPassword",
    "net.ssl.clusterPassword",
)


@dataclasses.dataclass
class MemberConfig:
    path: str
    conf: MongodConf
    db_path: str
    #: ``file``, ``syslog`` or None (stdout)
    log_destination: str | None
    log_path: str | None
    log_append: bool
    fork: bool
    pid_file: str | None
    encryption_enabled: bool
    cipher_mode: str
    kmip: KmipSettings
    rotate_master_key: bool
    secrets: list[str]

    @classmethod
    def read(cls, path: str, option: str = "config") -> MemberConfig:
        conf = MongodConf.read(path, option=option)
        security = to_plain(conf.security) or {}
        kmip_section = security.get("kmip")
        kmip = KmipSettings.from_mongod_security(security)
        destination = conf.value("systemLog.destination")
        log_path = conf.value("systemLog.path")
        if destination is not None and destination not in ("file", "syslog"):
            raise InvalidOptionError(
                option, f"systemLog.destination in {path} must be file or syslog, got {destination!r}"
            )
        if log_path is not None and destination is None:
            destination = "file"  # what the emulator and --logpath do; a real mongod may refuse it
        secrets = [str(v) for v in (conf.value(name) for name in SECRET_OPTIONS) if v not in (None, "")]
        return cls(
            path=path,
            conf=conf,
            db_path=str(conf.db_path or DEFAULT_DB_PATH),
            log_destination=destination,
            log_path=str(log_path) if log_path else None,
            log_append=bool(conf.value("systemLog.logAppend")),
            fork=bool(conf.value("processManagement.fork")),
            pid_file=_str_or_none(conf.value("processManagement.pidFilePath")),
            encryption_enabled=bool(security.get("enableEncryption")),
            cipher_mode=str(security.get("encryptionCipherMode") or DEFAULT_CIPHER_MODE),
            kmip=kmip,
            rotate_master_key=bool(isinstance(kmip_section, dict) and kmip_section.get(ROTATE_KEY)),
            secrets=secrets,
        )

    @property
    def uses_kmip(self) -> bool:
        return self.encryption_enabled and bool(self.kmip.server_name)

    @property
    def key_identifier(self) -> str | None:
        """``security.kmip.keyIdentifier``; PSMDB ignores an empty one."""
        return self.kmip.key_identifier or None

    def masked_security(self) -> dict[str, Any] | None:
        """The ``security`` section without secrets (the KMIP password masked, other keys kept)."""
        return masked(self.conf.security)

    def without_key_identifier(self) -> str:
        """The whole file text without ``security.kmip.keyIdentifier``: the other sections keep every
        byte, the security section its values and comments (``MongodConf.edit_security``)."""
        return self.conf.edit_security(_drop_key_identifier)

    def encryption_result(self) -> dict[str, Any]:
        """What the file configures for encryption, as the modules return it (no password)."""
        security = self.masked_security() or {}
        return {
            "enabled": self.encryption_enabled,
            "cipher_mode": self.cipher_mode,
            "kmip": security.get("kmip"),
            "key_identifier": self.key_identifier,
            "rotate_master_key": self.rotate_master_key,
        }


def _drop_key_identifier(security: MutableMapping[str, Any]) -> None:
    kmip = security.get("kmip")
    if isinstance(kmip, MutableMapping):
        kmip.pop(KEY_IDENTIFIER, None)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def redactor(secrets: list[str]) -> Callable[[str], str]:
    """A function that masks every secret in a text (mongod's output, error texts)."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "********")
        return text

    return redact
