# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The encryption part of mongod.conf's ``security`` mapping: one model, one rendering.

``mongod_kmip_config`` (which edits a file) and the ``kmip_security`` filter (which renders
text for operators who template their whole mongod.conf) both go through
``KmipEncryptionConfig.from_options`` and ``apply_to``, and both render YAML with
``render_security_yaml``, so the two paths cannot drift apart.

The model is declarative: ``security.kmip`` becomes exactly the options that are set (keys
mongod does not know, and the one-shot ``rotateMasterKey``, are removed), and
``encryptionCipherMode`` is written only when ``cipher_mode`` is set.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Mapping, MutableMapping
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import (
    CIPHER_MODES,
    KMIP_CONNECTION_ARGSPEC,
    MONGOD_KMIP_KEYS,
    KmipSettings,
)

with RUAMEL_YAML.importing():
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
if not RUAMEL_YAML.found:
    # the filter's mapping output needs no YAML library: plain dicts keep the key order too
    CommentedMap = dict  # type: ignore[assignment,misc]

#: shown instead of ``clientCertificatePassword`` in diffs and results
MASK = "********"
DEFAULT_CIPHER_MODE = "AES256-CBC"
ROTATE_KEY = "rotateMasterKey"
PASSWORD_KEY = MONGOD_KMIP_KEYS["client_certificate_password"]
#: security keys this model owns; every other security key is left as it is
ENCRYPTION_KEYS = ("enableEncryption", "encryptionCipherMode", "kmip")
#: security keys that select another key management and exclude KMIP in PSMDB
CONFLICTING_KEYS = {
    "encryptionKeyFile": "a local key file",
    "vault": "HashiCorp Vault",
}

#: the rendering options shared by the module and the filter (mongod's names in snake_case)
KMIP_CONFIG_ARGSPEC: dict[str, dict[str, Any]] = {
    **{name: dict(opts) for name, opts in KMIP_CONNECTION_ARGSPEC.items()},
    "key_identifier": {"type": "str"},
    "activate_keys": {"type": "bool"},
    "key_state_polling_seconds": {"type": "int", "no_log": False},
    "cipher_mode": {"type": "str", "choices": list(CIPHER_MODES)},
}


@dataclasses.dataclass
class KmipEncryptionConfig:
    """``security.enableEncryption: true`` + optional cipher mode + ``security.kmip``."""

    kmip: KmipSettings
    cipher_mode: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> KmipEncryptionConfig:
        """Coerce and validate options exactly as the module's argument spec does.

        Unknown names are refused, so a typo in a filter call fails instead of silently
        leaving an option out.
        """
        unknown = sorted(set(options) - set(KMIP_CONFIG_ARGSPEC))
        if unknown:
            raise InvalidOptionError(
                ", ".join(unknown), f"unknown option; valid options are {', '.join(sorted(KMIP_CONFIG_ARGSPEC))}"
            )
        given = {k: v for k, v in options.items() if v is not None}
        result = ArgumentSpecValidator(KMIP_CONFIG_ARGSPEC).validate(given)
        if result.error_messages:
            # messages name the option; no_log values are never echoed by the validator
            raise InvalidOptionError("options", "; ".join(result.error_messages))
        params = result.validated_parameters
        config = cls(kmip=KmipSettings.from_params(params), cipher_mode=params.get("cipher_mode"))
        config.validate()
        return config

    def validate(self) -> None:
        self.kmip.validate(require_connection=True)
        if self.cipher_mode is not None and self.cipher_mode not in CIPHER_MODES:
            raise InvalidOptionError(
                "cipher_mode", f"must be one of {', '.join(CIPHER_MODES)}, got {self.cipher_mode!r}"
            )

    @property
    def effective_cipher_mode(self) -> str:
        return self.cipher_mode or DEFAULT_CIPHER_MODE

    @property
    def writes_password(self) -> bool:
        return self.kmip.client_certificate_password is not None

    def apply_to(self, security: MutableMapping[str, Any]) -> list[str]:
        """Set the encryption keys in ``security`` in place; return notes for the operator.

        Keys that stay keep their position (and, in a ruamel ``CommentedMap``, their
        comments); new keys are appended in mongod's documented order.
        """
        refuse_conflicting_key_management(security)
        notes: list[str] = []
        _set_before_kmip(security, "enableEncryption", True)
        if self.cipher_mode is not None:
            _set_before_kmip(security, "encryptionCipherMode", self.cipher_mode)
        else:
            security.pop("encryptionCipherMode", None)
        wanted = self.kmip.to_mongod_kmip()
        kmip = security.get("kmip")
        if not isinstance(kmip, MutableMapping):
            security["kmip"] = _new_mapping(wanted)
            return notes
        for key in list(kmip):
            if key in wanted:
                continue
            del kmip[key]
            if key == ROTATE_KEY:
                notes.append(
                    "removed security.kmip.rotateMasterKey: a master key rotation is a one-shot mongod run "
                    "(mongod rotates and exits), never a persistent setting"
                )
            elif key == MONGOD_KMIP_KEYS["key_identifier"]:
                # Legal (mongod then takes the id from storage.bson), but rarely what was meant.
                notes.append(
                    "removed security.kmip.keyIdentifier because key_identifier is not set: mongod will use "
                    "the key id in storage.bson on a node with encrypted data, and register a new key on a "
                    "node without data; pass key_identifier to keep it in the file"
                )
            elif key not in MONGOD_KMIP_KEYS.values():
                notes.append(f"removed security.kmip.{key}: PSMDB has no such option")
        for key, value in wanted.items():
            kmip[key] = value
        return notes


def remove_encryption(security: MutableMapping[str, Any]) -> None:
    """``state: absent``: drop what this model owns, keep every other security key."""
    for key in ENCRYPTION_KEYS:
        security.pop(key, None)


def refuse_conflicting_key_management(security: Mapping[str, Any]) -> None:
    for key, what in CONFLICTING_KEYS.items():
        if security.get(key) is not None:
            raise InvalidOptionError(
                f"security.{key}",
                f"is set in mongod.conf: data-at-rest encryption is already configured with {what}, and PSMDB "
                "refuses KMIP together with it. Switching key management means re-encrypting the data by a "
                "rolling initial sync (playbook enable_kmip_encryption on emptied members), not a config edit",
            )


def _set_before_kmip(security: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Update in place, or add a new key just before an existing ``kmip`` (else at the end)."""
    if key in security or "kmip" not in security or not hasattr(security, "insert"):
        security[key] = value
        return
    security.insert(list(security).index("kmip"), key, value)


def _new_mapping(values: Mapping[str, Any]) -> Any:
    mapping = CommentedMap()
    for key, value in values.items():
        mapping[key] = value
    return mapping


def to_plain(value: Any) -> Any:
    """Ruamel nodes to plain dicts/lists/scalars, key order kept (for comparisons)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def masked(security: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A plain copy of ``security`` with the client certificate password replaced."""
    if security is None:
        return None
    plain = copy.deepcopy(to_plain(security))
    kmip = plain.get("kmip")
    if isinstance(kmip, dict) and kmip.get(PASSWORD_KEY) is not None:
        kmip[PASSWORD_KEY] = MASK
    return plain


def same_mapping(left: Any, right: Any) -> bool:
    """Equal values *and* equal key order, so an unchanged section keeps its bytes."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return list(left) == list(right) and all(same_mapping(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(same_mapping(a, b) for a, b in zip(left, right, strict=True))
    return type(to_plain(left)) is type(to_plain(right)) and to_plain(left) == to_plain(right)


def yaml_dumper(indent: int = 2, sequence_indent: int | None = None, sequence_offset: int | None = None) -> Any:
    RUAMEL_YAML.require()
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never fold long values such as server lists
    yaml.preserve_quotes = True
    seq_indent = sequence_indent if sequence_indent is not None else indent
    offset = sequence_offset if sequence_offset is not None else max(seq_indent - 2, 0)
    yaml.indent(mapping=indent, sequence=seq_indent, offset=offset)
    return yaml


def render_security_yaml(security: Mapping[str, Any] | None, indent: int = 2) -> str:
    """The ``security:`` block as mongod.conf text ("" when there is nothing to write)."""
    if not security:
        return ""
    stream = io.StringIO()
    yaml_dumper(indent).dump({"security": to_commented(security)}, stream)
    return stream.getvalue()


def to_commented(value: Any) -> Any:
    """Plain data to ruamel round-trip nodes (so the module and the filter edit the same types)."""
    if isinstance(value, Mapping):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = to_commented(item)
        return mapping
    if isinstance(value, (list, tuple)):
        return [to_commented(v) for v in value]
    return value
