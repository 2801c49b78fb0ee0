# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_key's decisions (what to send, changed, check mode, diff) on a scripted server (no network)."""

from __future__ import annotations

import types
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.keys import KeyAttributes
from ansible_collections.kmipops.psmdb.plugins.modules import kmip_key

SERVER = "kmip1.test:5696"


class FakeSession:
    server = SERVER

    def __init__(self, keys: dict[str, KeyAttributes]) -> None:
        self.keys = keys
        self.operations: list[str] = []
        self.closed = False

    def register_master_key(self, name: str | None) -> str:
        self.operations.append("Register")
        uid = str(100 + len(self.keys))
        self.keys[uid] = KeyAttributes(uid, [name] if name else [], "Symmetric Key", "AES", 256, "Pre-Active")
        return uid

    def activate(self, uid: str) -> None:
        self.operations.append("Activate")
        self.keys[uid].state = "Active"

    def revoke(self, uid: str) -> None:
        self.operations.append("Revoke")
        self.keys[uid].state = "Deactivated"

    def destroy(self, uid: str) -> None:
        self.operations.append("Destroy")
        del self.keys[uid]

    def close(self) -> None:
        self.closed = True


def run(keys: dict[str, KeyAttributes], check_mode: bool = False, **params: Any) -> tuple[dict, FakeSession]:
    session = FakeSession(keys)

    class FakeClient:
        def __init__(self, settings: Any, kmip_version: str) -> None:
            assert kmip_version == "1.0"

        def session(self, first: Any) -> tuple[FakeSession, Any]:
            return session, first(session)

    def find_key(s: FakeSession, uid: str | None, name: str | None) -> KeyAttributes | None:
        if uid:
            return s.keys.get(uid)
        return next((k for k in s.keys.values() if name in k.names), None)

    values = {"key_identifier": None, "name": None, "state": "present", "force": False, "kmip_version": "1.0"}
    values.update(params)
    module = types.SimpleNamespace(params=values, check_mode=check_mode, _diff=True, kmip_settings=lambda: None)
    patch = pytest.MonkeyPatch()
    patch.setattr(kmip_key, "KmipClient", FakeClient)
    patch.setattr(kmip_key.kmip_keys, "find_key", find_key)
    try:
        result = kmip_key.run(module)  # type: ignore[arg-type]
    finally:
        patch.undo()
    assert session.closed
    return result, session


def key(uid: str = "7", state: str = "Active", length: int = 256) -> KeyAttributes:
    return KeyAttributes(uid, ["k"], "Symmetric Key", "AES", length, state)


def test_present_registers_and_activates_a_missing_named_key() -> None:
    result, session = run({}, name="k")
    assert result["changed"] and result["state"] == "Active" and result["key_identifier"] == "100"
    assert session.operations == ["Register", "Activate"]
    assert result["diff"] == {"before": {}, "after": {"key_identifier": "100", "name": "k", "state": "Active"}}


def test_present_in_check_mode_predicts_without_acting() -> None:
    result, session = run({}, check_mode=True, name="k")
    assert result["changed"] and result["key_identifier"] is None
    assert session.operations == [] and session.keys == {}


def test_present_is_idempotent() -> None:
    result, session = run({"7": key()}, name="k")
    assert not result["changed"] and session.operations == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_present_activates_a_pre_active_key() -> None:
    result, session = run({"7": key(state="Pre-Active")}, key_identifier="7")
    assert result["changed"] and session.operations == ["Activate"]
    assert result["diff"]["before"]["state"] == "Pre-Active" and result["diff"]["after"]["state"] == "Active"


@pytest.mark.parametrize(
    ("existing", "error"),
    [(key(state="Deactivated"), errors.KmipKeyStateError), (key(length=128), errors.KmipWrongKeyTypeError)],
)
def test_present_refuses_unusable_keys(existing: KeyAttributes, error: type) -> None:
    with pytest.raises(error):
        run({"7": existing}, key_identifier="7")


def test_present_with_unknown_identifier_cannot_register() -> None:
    with pytest.raises(errors.KmipItemNotFoundError, match="give name"):
        run({}, key_identifier="7")


def test_deactivated_revokes_once() -> None:
    result, session = run({"7": key()}, key_identifier="7", state="deactivated")
    assert result["changed"] and session.operations == ["Revoke"]
    result, session = run({"7": key(state="Deactivated")}, key_identifier="7", state="deactivated")
    assert not result["changed"] and session.operations == []


def test_absent_refuses_an_active_key_without_force() -> None:
    keys = {"7": key()}
    with pytest.raises(errors.KmipKeyStateError, match="force: true"):
        run(keys, key_identifier="7", state="absent")
    result, session = run(keys, key_identifier="7", state="absent", force=True)
    assert result["changed"] and session.operations == ["Revoke", "Destroy"] and keys == {}


def test_absent_destroys_a_deactivated_key_and_is_idempotent() -> None:
    keys = {"7": key(state="Deactivated")}
    result, session = run(keys, name="k", state="absent")
    assert result["changed"] and session.operations == ["Destroy"] and result["state"] == "Destroyed"
    result, session = run(keys, name="k", state="absent")
    assert not result["changed"] and session.operations == []


def test_empty_name_is_refused() -> None:
    with pytest.raises(errors.InvalidOptionError) as caught:
        run({}, name=" ")
    assert caught.value.option == "name"
