# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Master keys as PSMDB sees them: attributes, usability checks and lifecycle steps.

A PSMDB master key is a 256-bit AES SymmetricKey in Raw format, in state Active (mongod
8.0 refuses any other state; 6.0/7.0 tolerate Pre-Active only with activateKeys unset).
Everything here works on one ``KmipSession`` and never returns key material.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    KmipAmbiguousNameError,
    KmipItemNotFoundError,
    KmipKeyStateError,
    KmipWrongKeyTypeError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import (
    KeyMaterialFacts,
    KmipSession,
    enum_title,
)

#: The attributes kmip_key_info and kmip_key read, in one Get Attributes.
KEY_ATTRIBUTES = [
    "Object Type",
    "Cryptographic Algorithm",
    "Cryptographic Length",
    "Cryptographic Usage Mask",
    "State",
    "Name",
    "Initial Date",
    "Activation Date",
    "Deactivation Date",
]

USAGE_MASK_BITS = {
    0x1: "Sign",
    0x2: "Verify",
    0x4: "Encrypt",
    0x8: "Decrypt",
    0x10: "Wrap Key",
    0x20: "Unwrap Key",
    0x40: "Export",
    0x80: "MAC Generate",
    0x100: "MAC Verify",
    0x200: "Derive Key",
    0x400: "Content Commitment",
    0x800: "Key Agreement",
    0x1000: "Certificate Sign",
    0x2000: "CRL Sign",
}

ACTIVE = "Active"
PRE_ACTIVE = "Pre-Active"
DEACTIVATED = "Deactivated"


@dataclasses.dataclass
class KeyAttributes:
    """One managed object's attributes, as the modules return them."""

    key_identifier: str
    names: list[str] = dataclasses.field(default_factory=list)
    object_type: str | None = None
    algorithm: str | None = None
    length: int | None = None
    state: str | None = None
    usage_mask: list[str] | None = None
    initial_date: str | None = None
    activation_date: str | None = None
    deactivation_date: str | None = None

    def as_result(self) -> dict[str, Any]:
        return {
            "key_identifier": self.key_identifier,
            "name": self.names[0] if self.names else None,
            "names": list(self.names),
            "object_type": self.object_type,
            "algorithm": self.algorithm,
            "length": self.length,
            "state": self.state,
            "usage_mask": self.usage_mask,
            "initial_date": self.initial_date,
            "activation_date": self.activation_date,
            "deactivation_date": self.deactivation_date,
        }

    def master_key_problem(self) -> str | None:
        """Why this object cannot be a PSMDB master key (type/length only), or None."""
        if self.object_type not in (None, "Symmetric Key"):
            return f"it is a {self.object_type}, not a Symmetric Key"
        if self.algorithm != "AES" or self.length != 256:
            return f"it is {self.algorithm or 'unknown algorithm'}-{self.length or '?'}, PSMDB needs AES-256"
        return None


def state_title(value: Any) -> str:
    """KMIP State enum -> the names operators know: Pre-Active, Active, Deactivated..."""
    title = enum_title(value)
    return "Pre-Active" if title == "Pre Active" else title


def _date(value: Any) -> str:
    return datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC).isoformat()


def parse_attributes(key_identifier: str, attributes: list[Any]) -> KeyAttributes:
    """PyKMIP ``Attribute`` objects -> ``KeyAttributes`` (unknown attributes ignored)."""
    key = KeyAttributes(key_identifier=key_identifier)
    for attribute in attributes:
        name = attribute.attribute_name.value
        value = attribute.attribute_value
        if name == "Name":
            key.names.append(str(value.name_value.value))
        elif name == "Object Type":
            key.object_type = enum_title(value.value)
        elif name == "Cryptographic Algorithm":
            key.algorithm = enum_title(value.value)
        elif name == "Cryptographic Length":
            key.length = int(value.value)
        elif name == "State":
            key.state = state_title(value.value)
        elif name == "Cryptographic Usage Mask":
            mask = int(value.value)
            key.usage_mask = [label for bit, label in USAGE_MASK_BITS.items() if mask & bit]
        elif name == "Initial Date":
            key.initial_date = _date(value.value)
        elif name == "Activation Date":
            key.activation_date = _date(value.value)
        elif name == "Deactivation Date":
            key.deactivation_date = _date(value.value)
    return key


def read_key(session: KmipSession, key_identifier: str) -> KeyAttributes:
    """One Get Attributes; raises ``KmipItemNotFoundError`` when it does not exist."""
    return parse_attributes(key_identifier, session.get_attributes(key_identifier, KEY_ATTRIBUTES))


def find_key(session: KmipSession, key_identifier: str | None, name: str | None) -> KeyAttributes | None:
    """The key given by identifier (preferred) or by Name; None when it does not exist."""
    if key_identifier:
        try:
            return read_key(session, key_identifier)
        except KmipItemNotFoundError:
            return None
    if not name:
        raise ValueError("key_identifier or name is required")
    uids = session.locate_by_name(name)
    if not uids:
        return None
    if len(uids) > 1:
        raise KmipAmbiguousNameError(session.server, name, uids)
    return read_key(session, uids[0])


def require_master_key_type(server: str, key: KeyAttributes) -> None:
    problem = key.master_key_problem()
    if problem:
        raise KmipWrongKeyTypeError(
            server,
            key.key_identifier,
            problem,
            "mongod can only use a 256-bit AES symmetric key; give another key or let the module register one",
        )


@dataclasses.dataclass
class MongodKeyCheck:
    """The outcome of mongod's start sequence (Get Attributes State, then Get) for one key."""

    key_identifier: str
    exists: bool
    state: str | None = None
    object_type: str | None = None
    key_format_type: str | None = None
    algorithm: str | None = None
    length: int | None = None
    usable: bool = False
    problems: list[str] = dataclasses.field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_like_mongod(session: KmipSession, key_identifier: str) -> MongodKeyCheck:
    """Do what mongod does at start with a keyIdentifier, and say whether it would start.

    Permission and other operation errors propagate: they are problems of the identity or
    of the server, not of the key, and carry their own advice.
    """
    try:
        attributes = session.get_attributes(key_identifier, ["State"])
    except KmipItemNotFoundError:
        return absent_key_check(key_identifier)
    return check_after_state(session, key_identifier, attributes)


def absent_key_check(key_identifier: str) -> MongodKeyCheck:
    """Get Attributes(State) answered Item Not Found: mongod refuses to start."""
    check = MongodKeyCheck(key_identifier=key_identifier, exists=False)
    check.problems.append(
        "the key does not exist on the KMIP server (or is not visible to this client certificate): "
        "mongod would refuse to start ('Master encryption key is absent')"
    )
    return check


def check_after_state(session: KmipSession, key_identifier: str, attributes: list[Any]) -> MongodKeyCheck:
    """The rest of mongod's start sequence once Get Attributes(State) returned ``attributes``."""
    check = MongodKeyCheck(key_identifier=key_identifier, exists=True)
    check.state = parse_attributes(key_identifier, attributes).state
    if check.state != ACTIVE:
        check.problems.append(
            f"the key is {check.state}, not Active: mongod 8.0 refuses to start, 6.0/7.0 only accept a "
            "Pre-Active key with activateKeys unset; activate it with kmipops.psmdb.kmip_key"
        )
        return check
    facts: KeyMaterialFacts = session.get_key_facts(key_identifier)
    check.object_type = facts.object_type
    check.key_format_type = facts.key_format_type
    check.algorithm = facts.algorithm
    check.length = facts.length
    if facts.object_type != "Symmetric Key":
        check.problems.append(f"Get returned a {facts.object_type}; mongod needs a Symmetric Key")
    if facts.key_format_type != "Raw" or facts.wrapped:
        check.problems.append(
            f"Get returned key format {facts.key_format_type}{' (wrapped)' if facts.wrapped else ''}; "
            "mongod needs an unwrapped Raw key"
        )
    if facts.algorithm != "AES" or facts.length != 256 or facts.material_bytes != 32:
        check.problems.append(
            f"the key is {facts.algorithm}-{facts.length} ({facts.material_bytes} bytes); mongod needs AES-256"
        )
    if facts.unique_identifier not in (None, key_identifier):
        check.problems.append("Get answered with another unique identifier; mongod refuses that")
    check.usable = not check.problems
    return check


def ensure_usable_state(server: str, key: KeyAttributes) -> bool:
    """For state=present: True when the key must be activated (Pre-Active); error when it cannot be used."""
    if key.state == ACTIVE:
        return False
    if key.state == PRE_ACTIVE:
        return True
    raise KmipKeyStateError(
        server,
        key.key_identifier,
        f"the key is {key.state}, mongod needs an Active key",
        "A key that left the Active state cannot be activated again (KMIP); register a new key and rotate "
        "the master key to it",
    )
