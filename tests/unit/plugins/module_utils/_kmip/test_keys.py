# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_keys: attribute parsing and mongod's key checks, on a scripted session (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from kmip.core import enums
from kmip.core.factories.attributes import AttributeFactory

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import keys as kmip_keys
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KeyMaterialFacts

FACTORY = AttributeFactory()
SERVER = "kmip1.test:5696"


def attrs(state: Any = enums.State.ACTIVE, algorithm: Any = enums.CryptographicAlgorithm.AES, length: int = 256):
    return [
        FACTORY.create_attribute(enums.AttributeType.OBJECT_TYPE, enums.ObjectType.SYMMETRIC_KEY),
        FACTORY.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM, algorithm),
        FACTORY.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, length),
        FACTORY.create_attribute(
            enums.AttributeType.CRYPTOGRAPHIC_USAGE_MASK,
            [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT],
        ),
        FACTORY.create_attribute(enums.AttributeType.STATE, state),
        FACTORY.create_attribute(enums.AttributeType.NAME, "psmdb-rs0"),
    ]


class ScriptedSession:
    server = SERVER

    def __init__(self, keys: dict[str, list[Any]], facts: KeyMaterialFacts | None = None) -> None:
        self.keys = keys
        self.facts = facts
        self.operations: list[str] = []

    def get_attributes(self, uid: str, names: list[str]) -> list[Any]:
        self.operations.append("Get Attributes")
        if uid not in self.keys:
            raise errors.KmipItemNotFoundError(SERVER, "Get Attributes", "Item Not Found")
        return [a for a in self.keys[uid] if a.attribute_name.value in names]

    def get_key_facts(self, uid: str) -> KeyMaterialFacts:
        self.operations.append("Get")
        assert self.facts is not None
        return self.facts

    def locate_by_name(self, name: str) -> list[str]:
        self.operations.append("Locate")
        return [uid for uid, a in self.keys.items() if kmip_keys.parse_attributes(uid, a).names == [name]]


def good_facts(**overrides: Any) -> KeyMaterialFacts:
    values: dict[str, Any] = {
        "unique_identifier": "7",
        "object_type": "Symmetric Key",
        "key_format_type": "Raw",
        "algorithm": "AES",
        "length": 256,
        "material_bytes": 32,
        "wrapped": False,
    }
    values.update(overrides)
    return KeyMaterialFacts(**values)


def test_parse_attributes() -> None:
    key = kmip_keys.parse_attributes("7", attrs(state=enums.State.PRE_ACTIVE))
    assert key.as_result() == {
        "key_identifier": "7",
        "name": "psmdb-rs0",
        "names": ["psmdb-rs0"],
        "object_type": "Symmetric Key",
        "algorithm": "AES",
        "length": 256,
        "state": "Pre-Active",
        "usage_mask": ["Encrypt", "Decrypt"],
        "initial_date": None,
        "activation_date": None,
        "deactivation_date": None,
    }
    assert key.master_key_problem() is None


def test_dates_are_iso_8601_utc() -> None:
    dated = [
        *attrs(),
        FACTORY.create_attribute(enums.AttributeType.INITIAL_DATE, 1767225600),
        FACTORY.create_attribute(enums.AttributeType.ACTIVATION_DATE, 1767225660),
    ]
    key = kmip_keys.parse_attributes("7", dated)
    assert (key.initial_date, key.activation_date) == ("2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00")
    assert "Initial Date" in kmip_keys.KEY_ATTRIBUTES


def test_wrong_algorithm_or_length_is_refused() -> None:
    key = kmip_keys.parse_attributes("8", attrs(length=128))
    with pytest.raises(errors.KmipWrongKeyTypeError) as caught:
        kmip_keys.require_master_key_type(SERVER, key)
    assert "AES-128" in str(caught.value) and SERVER in str(caught.value)
    key = kmip_keys.parse_attributes("9", attrs(algorithm=enums.CryptographicAlgorithm.TRIPLE_DES, length=192))
    assert "AES-256" in (key.master_key_problem() or "")


@pytest.mark.parametrize(
    ("state", "activate"),
    [(enums.State.ACTIVE, False), (enums.State.PRE_ACTIVE, True)],
)
def test_usable_states(state: Any, activate: bool) -> None:
    assert kmip_keys.ensure_usable_state(SERVER, kmip_keys.parse_attributes("7", attrs(state=state))) is activate


@pytest.mark.parametrize("state", [enums.State.DEACTIVATED, enums.State.COMPROMISED])
def test_a_key_that_left_active_is_not_reactivated(state: Any) -> None:
    with pytest.raises(errors.KmipKeyStateError) as caught:
        kmip_keys.ensure_usable_state(SERVER, kmip_keys.parse_attributes("7", attrs(state=state)))
    assert "register a new key" in str(caught.value)


def test_find_key_by_identifier_and_by_name() -> None:
    session = ScriptedSession({"7": attrs()})
    assert kmip_keys.find_key(session, "7", None).key_identifier == "7"  # type: ignore[arg-type,union-attr]
    assert kmip_keys.find_key(session, "8", None) is None  # type: ignore[arg-type]
    assert kmip_keys.find_key(session, None, "psmdb-rs0").key_identifier == "7"  # type: ignore[arg-type,union-attr]
    assert kmip_keys.find_key(session, None, "other") is None  # type: ignore[arg-type]


def test_find_key_refuses_an_ambiguous_name() -> None:
    session = ScriptedSession({"7": attrs(), "8": attrs()})
    with pytest.raises(errors.KmipAmbiguousNameError):
        kmip_keys.find_key(session, None, "psmdb-rs0")  # type: ignore[arg-type]


def test_check_like_mongod_usable_key_does_state_then_get() -> None:
    session = ScriptedSession({"7": attrs()}, good_facts())
    check = kmip_keys.check_like_mongod(session, "7")  # type: ignore[arg-type]
    assert check.usable and check.exists and check.problems == []
    assert session.operations == ["Get Attributes", "Get"]
    assert "key_bytes" not in check.as_result() and "material" not in str(check.as_result())


def test_check_like_mongod_absent_key() -> None:
    session = ScriptedSession({})
    check = kmip_keys.check_like_mongod(session, "7")  # type: ignore[arg-type]
    assert not check.exists and not check.usable
    assert "absent" in check.problems[0]


def test_check_like_mongod_stops_at_a_non_active_state() -> None:
    session = ScriptedSession({"7": attrs(state=enums.State.PRE_ACTIVE)}, good_facts())
    check = kmip_keys.check_like_mongod(session, "7")  # type: ignore[arg-type]
    assert not check.usable and check.state == "Pre-Active"
    assert session.operations == ["Get Attributes"]  # mongod does not Get a non-Active key


@pytest.mark.parametrize(
    ("facts", "fragment"),
    [
        (good_facts(length=128, material_bytes=16), "AES-256"),
        (good_facts(key_format_type="Transparent Symmetric Key"), "Raw"),
        (good_facts(wrapped=True), "wrapped"),
        (good_facts(unique_identifier="8"), "another unique identifier"),
    ],
)
def test_check_like_mongod_refuses_what_mongod_refuses(facts: KeyMaterialFacts, fragment: str) -> None:
    check = kmip_keys.check_like_mongod(ScriptedSession({"7": attrs()}, facts), "7")  # type: ignore[arg-type]
    assert not check.usable
    assert any(fragment in p for p in check.problems)
