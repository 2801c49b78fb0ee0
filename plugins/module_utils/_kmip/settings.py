# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The KMIP settings of a mongod, as one validated model.

Option names are PSMDB's ``security.kmip.*`` keys in snake_case. The same model is used by
the KMIP modules (to connect exactly as mongod would), by ``mongod_kmip_config`` and by the
``kmip_security`` filter (to render mongod.conf), so validation lives here once.

Defaults are mongod's own and are *not* spelled out in the argument spec: a value that is
``None`` means "not set", which lets ``mongod_kmip_config`` write only what the operator set
and lets ``kmip_server_info`` fill in values read from an existing mongod.conf.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import (
    INT32_MAX,
    INT32_MIN,
    PORT_BOUND,
    IntBound,
    check_hosts,
    check_text,
)

# mongod's defaults (src/mongo/db/encryption/encryption_options.h)
DEFAULT_PORT = 5696
DEFAULT_CONNECT_RETRIES = 0
DEFAULT_CONNECT_TIMEOUT_MS = 5000
MIN_CONNECT_TIMEOUT_MS = 1000
CIPHER_MODES = ("AES256-CBC", "AES256-GCM")
KMIP_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "2.0")

# snake_case option -> PSMDB security.kmip key
MONGOD_KMIP_KEYS: dict[str, str] = {
    "server_name": "serverName",
    "port": "port",
    "server_ca_file": "serverCAFile",
    "client_certificate_file": "clientCertificateFile",
    "client_certificate_password": "clientCertificatePassword",
    "connect_retries": "connectRetries",
    "connect_timeout_ms": "connectTimeoutMS",
    "key_identifier": "keyIdentifier",
    "activate_keys": "activateKeys",
    "key_state_polling_seconds": "keyStatePollingSeconds",
}

#: mongod parses these as 32-bit ints (encryption_options.idl): a larger value in mongod.conf keeps it
#: from starting. One table for the modules (KmipModule.OPTION_BOUNDS), the filter and mongod.conf.
KMIP_OPTION_BOUNDS: dict[str, IntBound] = {
    "port": PORT_BOUND,
    "connect_retries": IntBound(0, INT32_MAX, "tries = retries + 1; mongod reads a 32-bit int"),
    "connect_timeout_ms": IntBound(MIN_CONNECT_TIMEOUT_MS, INT32_MAX, "mongod refuses less and reads a 32-bit int"),
    "key_state_polling_seconds": IntBound(INT32_MIN, INT32_MAX, "0 or less disables polling; a 32-bit int"),
}

# The connection options every KMIP module accepts (documented by the
# kmipops.psmdb.kmip doc fragment). No defaults here on purpose: see module docstring.
KMIP_CONNECTION_ARGSPEC: dict[str, dict[str, Any]] = {
    "server_name": {"type": "list", "elements": "str"},
    "port": {"type": "int"},
    "server_ca_file": {"type": "path"},
    "client_certificate_file": {"type": "path"},
    "client_certificate_password": {"type": "str", "no_log": True},
    "connect_retries": {"type": "int"},
    "connect_timeout_ms": {"type": "int"},
}


@dataclasses.dataclass
class KmipSettings:
    """What mongod reads from ``security.kmip``; ``None`` means "not set"."""

    server_name: list[str] | None = None
    port: int | None = None
    server_ca_file: str | None = None
    client_certificate_file: str | None = None
    client_certificate_password: str | None = dataclasses.field(default=None, repr=False)
    connect_retries: int | None = None
    connect_timeout_ms: int | None = None
    key_identifier: str | None = None
    activate_keys: bool | None = None
    key_state_polling_seconds: int | None = None

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> KmipSettings:
        """Build from module parameters (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: params[k] for k in names if params.get(k) is not None})

    @classmethod
    def from_mongod_security(cls, security: Mapping[str, Any] | None) -> KmipSettings:
        """Build from the ``security`` mapping of a mongod.conf (camelCase keys).

        ``serverName`` is PSMDB's comma-separated string; it is split without trimming,
        exactly as PSMDB does, so ``validate`` can flag stray spaces.
        """
        kmip = (security or {}).get("kmip") or {}
        if not isinstance(kmip, Mapping):
            raise InvalidOptionError("security.kmip", "must be a mapping in mongod.conf")
        values: dict[str, Any] = {}
        for option, key in MONGOD_KMIP_KEYS.items():
            if key in kmip and kmip[key] is not None:
                values[option] = kmip[key]
        if "server_name" in values:
            values["server_name"] = split_server_name(values["server_name"])
        key_id = values.get("key_identifier")
        if isinstance(key_id, int) and not isinstance(key_id, bool):
            # mongod takes a YAML number as its text (``keyIdentifier: 1`` names the key "1")
            values["key_identifier"] = str(key_id)
        return cls(**values)

    def merged_over(self, base: KmipSettings) -> KmipSettings:
        """Options set here override ``base`` (explicit module options over mongod.conf)."""
        merged = dataclasses.replace(base)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                setattr(merged, field.name, value)
        return merged

    # -- effective values (mongod's defaults applied) -------------------------------------

    @property
    def effective_port(self) -> int:
        return DEFAULT_PORT if self.port is None else self.port

    @property
    def effective_connect_retries(self) -> int:
        return DEFAULT_CONNECT_RETRIES if self.connect_retries is None else self.connect_retries

    @property
    def effective_connect_timeout_ms(self) -> int:
        return DEFAULT_CONNECT_TIMEOUT_MS if self.connect_timeout_ms is None else self.connect_timeout_ms

    # -- rendering ------------------------------------------------------------------------

    def to_mongod_kmip(self) -> dict[str, Any]:
        """The ``security.kmip`` mapping mongod reads: only the options that are set."""
        out: dict[str, Any] = {}
        for option, key in MONGOD_KMIP_KEYS.items():
            value = getattr(self, option)
            if value is None:
                continue
            out[key] = ",".join(value) if option == "server_name" else value
        return out

    # -- validation -----------------------------------------------------------------------

    def validate(self, *, require_connection: bool = True) -> None:
        """Raise ``InvalidOptionError`` for what PSMDB itself would reject at start.

        With ``require_connection`` the options needed to open a KMIP session must be set.
        File checks (existence, readability, PEM content) belong to the callers, which know
        on which host and as which user the files are read.
        """
        validate_server_names(self.server_name)
        for option, bound in KMIP_OPTION_BOUNDS.items():
            bound.check(option, getattr(self, option))
        if self.activate_keys is not None and not isinstance(self.activate_keys, bool):
            raise InvalidOptionError("activate_keys", "must be a boolean")
        for option in ("server_ca_file", "client_certificate_file", "key_identifier"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidOptionError(option, "must be a non-empty string")
            check_text(option, value)
        check_text("client_certificate_password", self.client_certificate_password, secret=True)
        if self.client_certificate_password is not None and self.client_certificate_file is None:
            raise InvalidOptionError(
                "client_certificate_password", "requires client_certificate_file (mongod refuses it alone)"
            )
        if require_connection:
            if not self.server_name:
                raise InvalidOptionError("server_name", "is required: at least one KMIP server")
            if self.client_certificate_file is None:
                raise InvalidOptionError(
                    "client_certificate_file",
                    "is required: mongod authenticates to the KMIP server with a client certificate",
                )


def split_server_name(value: Any) -> list[str]:
    """PSMDB's ``serverName`` is one string, comma-separated; a YAML list is accepted too."""
    if isinstance(value, str):
        return value.split(",")
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise InvalidOptionError("server_name", f"must be a string or a list of strings, got {type(value).__name__}")


def validate_server_names(names: list[str] | None) -> None:
    if names is None:
        return
    if not isinstance(names, list) or not names:
        raise InvalidOptionError("server_name", "must be a non-empty list of host names or addresses")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise InvalidOptionError("server_name", f"entry {index + 1} is empty")
        if any(ch.isspace() for ch in name):
            raise InvalidOptionError(
                "server_name",
                f"entry {index + 1} ({name!r}) contains whitespace; PSMDB does not trim the "
                "comma-separated list, so mongod would try to resolve it as written",
            )
        if "," in name:
            raise InvalidOptionError("server_name", f"entry {index + 1} ({name!r}) contains a comma; give a list")
    check_hosts("server_name", names)
