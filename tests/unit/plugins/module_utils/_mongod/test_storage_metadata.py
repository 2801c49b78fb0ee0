# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_mongod.storage_metadata: what a dbPath holds, and the encryption changes mongod would refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import (
    DbPathState,
    check_encryption_change,
    inspect_db_path,
)
from unit.utils.db_path import write_storage_bson

KMIP = {"kmip": {"keyId": "42"}}
VAULT = {"vault": {"keyId": "secret/v1"}}
KEYFILE = {"keyFile": "/etc/mongodb-keyfile"}


def test_a_missing_db_path_is_a_fresh_node(tmp_path: Path) -> None:
    state = inspect_db_path(str(tmp_path / "db"))
    assert not state.exists and not state.storage_bson and not state.data_files
    assert state.encryption_kind is None and not state.holds_unencrypted_data


def test_an_empty_db_path_holds_nothing(tmp_path: Path) -> None:
    state = inspect_db_path(str(tmp_path))
    assert state.exists and not state.holds_unencrypted_data


def test_wiredtiger_files_without_storage_bson_are_unencrypted_data(tmp_path: Path) -> None:
    (tmp_path / "collection-0-123.wt").write_bytes(b"")
    state = inspect_db_path(str(tmp_path))
    assert state.data_files and not state.storage_bson and state.holds_unencrypted_data


@pytest.mark.parametrize(
    "encryption, kind, key_id", [(KMIP, "kmip", "42"), (VAULT, "vault", None), (KEYFILE, "keyfile", None)]
)
def test_storage_bson_says_how_the_data_is_encrypted(
    tmp_path: Path, encryption: dict[str, Any], kind: str, key_id: str | None
) -> None:
    write_storage_bson(tmp_path, encryption)
    state = inspect_db_path(str(tmp_path))
    assert state.storage_bson and state.encryption_kind == kind and state.kmip_key_id == key_id
    assert not state.holds_unencrypted_data


def test_storage_bson_without_encryption_options_is_unencrypted(tmp_path: Path) -> None:
    write_storage_bson(tmp_path, None, data_files=False)
    state = inspect_db_path(str(tmp_path))
    assert state.storage_bson and state.encryption is None and state.holds_unencrypted_data


def test_a_numeric_kmip_key_id_is_returned_as_text(tmp_path: Path) -> None:
    write_storage_bson(tmp_path, {"kmip": {"keyId": 7}})
    assert inspect_db_path(str(tmp_path)).kmip_key_id == "7"


def test_a_corrupt_storage_bson_names_db_path(tmp_path: Path) -> None:
    (tmp_path / "storage.bson").write_bytes(b"\x05\x00\x00\x00")
    with pytest.raises(InvalidOptionError) as caught:
        inspect_db_path(str(tmp_path))
    assert caught.value.option == "db_path" and "not a valid BSON document" in str(caught.value)


def state(encryption: dict[str, Any] | None = None, *, data: bool = False) -> DbPathState:
    return DbPathState(db_path="/data/db", exists=True, storage_bson=data, encryption=encryption, data_files=data)


def change(db: DbPathState, **kwargs: Any) -> None:
    kwargs.setdefault("current_cipher_mode", "AES256-CBC")
    kwargs.setdefault("enable", True)
    check_encryption_change(db, **kwargs)


def test_a_fresh_node_accepts_any_kmip_configuration() -> None:
    change(state(), key_identifier="1", wanted_cipher_mode="AES256-GCM")
    change(state(), enable=False)


def test_the_same_key_and_mode_on_kmip_data_is_accepted() -> None:
    change(state(KMIP, data=True), key_identifier="42", wanted_cipher_mode="AES256-CBC")
    change(state(KMIP, data=True), key_identifier=None, wanted_cipher_mode="AES256-CBC")


@pytest.mark.parametrize(
    "db, kwargs, option, words",
    [
        (state(KMIP, data=True), {"enable": False}, "state", "encrypted (kmip)"),
        (state(VAULT, data=True), {}, "state", "HashiCorp Vault"),
        (state(KEYFILE, data=True), {}, "state", "a local key file"),
        (state(None, data=True), {}, "state", "unencrypted data"),
        (state(KMIP, data=True), {"key_identifier": "43"}, "key_identifier", "rotation"),
        (state(KMIP, data=True), {"wanted_cipher_mode": "AES256-GCM"}, "cipher_mode", "cannot switch"),
    ],
    ids=["absent-on-encrypted", "vault", "keyfile", "unencrypted", "other-key", "other-mode"],
)
def test_what_mongod_cannot_do_to_existing_data_is_refused(
    db: DbPathState, kwargs: dict[str, Any], option: str, words: str
) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        change(db, **kwargs)
    assert caught.value.option == option and words in str(caught.value)


@pytest.mark.parametrize(
    "document, field",
    [
        ({"storage": "wiredTiger"}, "storage is a string"),
        ({"storage": 1}, "storage is a number"),
        ({"storage": {"options": ["x"]}}, "storage.options is a array"),
        ({"storage": {"options": {"encryption": True}}}, "storage.options.encryption is a boolean"),
        ({"storage": {"options": {"encryption": {"kmip": "k1"}}}}, "storage.options.encryption.kmip is a string"),
    ],
)
def test_a_storage_bson_of_the_wrong_shape_is_a_typed_error(tmp_path: Path, document: dict, field: str) -> None:
    import bson

    (tmp_path / "storage.bson").write_bytes(bson.encode(document))
    with pytest.raises(InvalidOptionError) as caught:
        inspect_db_path(str(tmp_path))
    assert caught.value.option == "db_path" and field in str(caught.value)


def test_a_storage_bson_that_is_not_bson_is_a_typed_error_without_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "storage.bson").write_bytes(b"\x30\x00\x00\x00S3cretBytes")
    with pytest.raises(InvalidOptionError) as caught:
        inspect_db_path(str(tmp_path))
    assert "not a valid BSON document" in str(caught.value) and "S3cret" not in str(caught.value)
