"""The dbPath layout: keystore under the master key, per-database keys, data stores."""

from __future__ import annotations

import secrets
from pathlib import Path

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psmdb_emulator import storage


@pytest.mark.parametrize("mode", storage.CIPHER_MODES)
@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(max_size=2048))
def test_blob_round_trip_and_wrong_key_is_detected(mode: str, plaintext: bytes) -> None:
    key = secrets.token_bytes(32)
    blob = storage.encrypt_blob(key, mode, plaintext)
    assert storage.decrypt_blob(key, mode, blob) == plaintext
    with pytest.raises(storage.DecryptionError):
        storage.decrypt_blob(secrets.token_bytes(32), mode, blob)


@pytest.mark.parametrize("mode", storage.CIPHER_MODES)
def test_encrypted_store_round_trip_and_wrong_master_key(tmp_path: Path, mode: str) -> None:
    master = secrets.token_bytes(32)
    keystore = storage.Keystore.create(tmp_path / storage.KEYSTORE_DIR, master, mode)
    store = storage.EncryptedDataStore(tmp_path, keystore, {"kmip": {"keyId": "1"}})
    store.write_db("app", b"rows of app")
    store.write_db("odd/name", b"x")
    assert store.list_dbs() == ["app", "odd/name"]
    raw = (tmp_path / storage.DATA_DIR / "app.wt").read_bytes()
    assert b"rows of app" not in raw

    reopened = storage.Keystore.open(tmp_path / storage.KEYSTORE_DIR, master, mode)
    assert storage.EncryptedDataStore(tmp_path, reopened, None).read_db("app") == b"rows of app"
    with pytest.raises(storage.DecryptionError):
        storage.Keystore.open(tmp_path / storage.KEYSTORE_DIR, secrets.token_bytes(32), mode)
    with pytest.raises(storage.StorageError):  # encrypted data read without encryption
        storage.PlainDataStore(tmp_path).read_db("app")

    store.drop_db("app")
    assert store.read_db("app") is None
    assert reopened.database_names() == ["app", "odd/name"]  # the old handle is a snapshot
    assert storage.Keystore.open(tmp_path / storage.KEYSTORE_DIR, master, mode).database_names() == ["odd/name"]


def test_plain_store_round_trip(tmp_path: Path) -> None:
    store = storage.PlainDataStore(tmp_path)
    store.write_db("admin", b"\x00\x01")
    assert store.read_db("admin") == b"\x00\x01"
    assert store.read_db("missing") is None
    assert storage.data_file_kinds(tmp_path) == {"plain"}


def test_i10_3_encryption_at_rest_only_in_a_build_that_has_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 7.0.14-8 has no serverStatus().encryptionAtRest (PSMDB-1633 came in 2025): None = left out
    monkeypatch.delenv(storage.ENCRYPTION_STATUS_ENV, raising=False)
    plain = storage.PlainDataStore(tmp_path / "plain")
    keystore = storage.Keystore.create(tmp_path / "enc" / storage.KEYSTORE_DIR, secrets.token_bytes(32), "AES256-GCM")
    kmip = storage.EncryptedDataStore(tmp_path / "enc", keystore, {"kmip": {"keyId": "7"}})
    local = storage.EncryptedDataStore(tmp_path / "enc", keystore, "local")
    assert (plain.encryption_status(), kmip.encryption_status(), local.encryption_status()) == (None, None, None)
    monkeypatch.setenv(storage.ENCRYPTION_STATUS_ENV, "1")
    assert plain.encryption_status() == {"encryptionEnabled": False}
    assert kmip.encryption_status() == {
        "encryptionEnabled": True,
        "encryptionCipherMode": "AES256-GCM",
        "encryptionKeyId": {"kmip": {"keyId": "7"}},
    }
    assert local.encryption_status()["encryptionKeyId"] == "local"  # type: ignore[index]


def test_rotation_reencrypts_keystore_keeps_database_keys_and_swaps(tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    keystore = storage.Keystore.create(tmp_path / storage.KEYSTORE_DIR, old, storage.CIPHER_GCM)
    storage.EncryptedDataStore(tmp_path, keystore, None).write_db("app", b"data")
    (tmp_path / storage.ROTATED_DIR).mkdir()  # an older backup is replaced
    (tmp_path / storage.ROTATION_DIR).mkdir()
    halves: list[int] = []
    keystore.clone_into(
        tmp_path / storage.ROTATION_DIR,
        new,
        midway=lambda: halves.append((tmp_path / storage.ROTATION_DIR / storage.KEYSTORE_FILE).stat().st_size),
    )
    # midway the clone is a partial file, as a kill during the copy leaves it
    assert 0 < halves[0] < (tmp_path / storage.ROTATION_DIR / storage.KEYSTORE_FILE).stat().st_size
    storage.swap_rotated_keystore(tmp_path)
    assert not (tmp_path / storage.ROTATION_DIR).exists()
    rotated = storage.Keystore.open(tmp_path / storage.KEYSTORE_DIR, new, storage.CIPHER_GCM)
    assert storage.EncryptedDataStore(tmp_path, rotated, None).read_db("app") == b"data"
    # the backup still opens with the old key only
    storage.Keystore.open(tmp_path / storage.ROTATED_DIR, old, storage.CIPHER_GCM)
    with pytest.raises(storage.DecryptionError):
        storage.Keystore.open(tmp_path / storage.KEYSTORE_DIR, old, storage.CIPHER_GCM)


def test_storage_bson_is_real_bson(tmp_path: Path) -> None:
    storage.write_storage_metadata(tmp_path, {"kmip": {"keyId": "7"}})
    document = bson.decode((tmp_path / storage.STORAGE_BSON).read_bytes())
    assert document["storage"]["engine"] == "wiredTiger"
    assert storage.stored_kmip_key_id(storage.read_storage_metadata(tmp_path)) == "7"
    assert storage.read_storage_metadata(tmp_path / "absent") is None


def test_new_key_id_replaces_only_the_encryption_options(tmp_path: Path) -> None:
    # PSMDB's writeMetadata: the existing options are kept, "encryption" is replaced
    document = {"storage": {"engine": "wiredTiger", "options": {"directoryPerDB": True, "encryption": {"kmip": {}}}}}
    (tmp_path / storage.STORAGE_BSON).write_bytes(bson.encode(document))
    storage.replace_storage_encryption(tmp_path, {"kmip": {"keyId": "8"}})
    assert bson.decode((tmp_path / storage.STORAGE_BSON).read_bytes()) == {
        "storage": {"engine": "wiredTiger", "options": {"directoryPerDB": True, "encryption": {"kmip": {"keyId": "8"}}}}
    }


def test_keystore_repr_never_shows_keys(tmp_path: Path) -> None:
    master = secrets.token_bytes(32)
    keystore = storage.Keystore.create(tmp_path / "k", master, storage.CIPHER_CBC)
    key = keystore.database_key("app", create=True)
    assert key is not None
    assert master.hex() not in repr(keystore) and key.hex() not in repr(keystore)
