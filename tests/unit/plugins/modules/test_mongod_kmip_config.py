# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_kmip_config run in-process: validation before any change, check/diff mode, writing."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.modules import mongod_kmip_config
from unit.utils.db_path import write_storage_bson
from unit.utils.module_runner import run_module
from unit.utils.mongod_pki import Pki, make_pki

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name
CONF = "storage:\n  dbPath: {db}\n# network\nnet:\n  port: 27017\nsecurity:\n  authorization: enabled\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "mongod.conf"
    path.write_text(CONF.format(db=tmp_path / "db"))
    path.chmod(0o644)
    return path


def base_args(conf: Path, pki: Pki, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "path": str(conf),
        "server_name": ["127.0.50.1", "127.0.50.2"],
        "server_ca_file": str(pki.ca_file),
        "client_certificate_file": str(pki.client_pem),
        "service_user": ME,
    }
    args.update(extra)
    return args


def run(args: dict[str, Any], capsys: pytest.CaptureFixture[str], check: bool = False, diff: bool = False) -> dict:
    return run_module(mongod_kmip_config, args, capsys, check=check, diff=diff)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- bad input: a clear error naming the option, and the file untouched ---------------------

BAD_OPTIONS = [
    ({"connect_timeout_ms": 999}, "connect_timeout_ms", "allowed: 1000 to 2147483647"),
    ({"connect_retries": -1}, "connect_retries", "allowed: 0 to 2147483647"),
    ({"port": 65536}, "port", "allowed: 1 to 65535"),
    ({"port": "five"}, "port", "int"),
    ({"server_name": ["kmip1", ""]}, "server_name", "empty"),
    ({"server_name": ["kmip1", " kmip2"]}, "server_name", "whitespace"),
    ({"server_name": []}, "server_name", "non-empty"),
    ({"cipher_mode": "AES128-CBC"}, "cipher_mode", "AES256-CBC"),
    ({"key_state_polling_seconds": "often"}, "key_state_polling_seconds", "int"),
    ({"client_certificate_file": None}, "client_certificate_file", "required"),
    ({"mode": "0644", "client_certificate_password": "x"}, "mode", "0600"),
    ({"mode": "rw-r--r--"}, "mode", "octal"),
    ({"owner": "no-such-user-kmipops"}, "owner", "does not exist"),
    ({"group": "no-such-group-kmipops"}, "group", "does not exist"),
    ({"service_user": "no-such-user-kmipops"}, "service_user", "does not exist"),
]


@pytest.mark.parametrize("extra, option, reason", BAD_OPTIONS, ids=[b[1] + ":" + b[2] for b in BAD_OPTIONS])
def test_bad_options_fail_before_any_change(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], extra: dict, option: str, reason: str
) -> None:
    before = sha256(conf)
    args = base_args(conf, pki, **extra)
    if "client_certificate_password" in extra:
        args["client_certificate_file"] = str(pki.client_pem_encrypted)
        args["client_certificate_password"] = pki.password
    result = run(args, capsys)
    assert result["failed"] is True
    assert option in result["msg"] and reason in result["msg"]
    assert sha256(conf) == before


def test_missing_file_is_refused(tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(base_args(tmp_path / "nope.conf", pki), capsys)
    assert result["failed"] and result["msg"].startswith("path:")
    assert not (tmp_path / "nope.conf").exists()


@pytest.mark.parametrize(
    "security, option",
    [
        ("  enableEncryption: true\n  encryptionKeyFile: /etc/key\n", "security.encryptionKeyFile"),
        ("  enableEncryption: true\n  vault:\n    serverName: vault\n", "security.vault"),
    ],
)
def test_other_key_management_in_the_file_is_refused(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], security: str, option: str
) -> None:
    conf.write_text(conf.read_text() + security)
    before = sha256(conf)
    result = run(base_args(conf, pki), capsys)
    assert result["failed"] and result["msg"].startswith(option + ":")
    assert sha256(conf) == before


@pytest.mark.parametrize(
    "pem_attr, password, option, reason",
    [
        ("key_only_pem", None, "client_certificate_file", "no PEM certificate"),
        ("cert_only_pem", None, "client_certificate_file", "no PEM private key"),
        ("mismatched_pem", None, "client_certificate_file", "does not belong to its private key"),
        ("client_pem_encrypted", None, "client_certificate_password", "is required"),
        ("client_pem_encrypted", "wrong-password", "client_certificate_password", "does not open"),
    ],
)
def test_bad_client_pem_is_refused(
    conf: Path,
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
    pem_attr: str,
    password: str | None,
    option: str,
    reason: str,
) -> None:
    before = sha256(conf)
    args = base_args(conf, pki, client_certificate_file=str(getattr(pki, pem_attr)))
    if password:
        args["client_certificate_password"] = password
    result = run(args, capsys)
    assert result["failed"] and result["msg"].startswith(option + ":") and reason in result["msg"]
    assert "wrong-password" not in json.dumps(result)
    assert sha256(conf) == before


def test_missing_ca_file_is_refused(conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    before = sha256(conf)
    result = run(base_args(conf, pki, server_ca_file=str(pki.ca_file) + ".missing"), capsys)
    assert result["failed"] and result["msg"].startswith("server_ca_file:") and "does not exist" in result["msg"]
    assert sha256(conf) == before


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to check a file as another user")
def test_files_unreadable_by_the_service_user_are_refused(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sha256(conf)
    result = run(base_args(conf, pki, service_user="nobody", owner=ME), capsys)
    assert result["failed"] and result["msg"].startswith("server_ca_file:")
    assert "service user 'nobody'" in result["msg"]
    assert sha256(conf) == before


def test_a_different_key_on_encrypted_data_is_a_rotation(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_storage_bson(tmp_path / "db", {"kmip": {"keyId": "17"}})
    before = sha256(conf)
    result = run(base_args(conf, pki, key_identifier="18"), capsys)
    assert result["failed"] and result["msg"].startswith("key_identifier:")
    assert "'17'" in result["msg"] and "rotation" in result["msg"]
    assert sha256(conf) == before
    same = run(base_args(conf, pki, key_identifier="17"), capsys)
    assert same["changed"] is True and same["data_key_identifier"] == "17" and same["data_encryption"] == "kmip"


def test_the_cipher_mode_of_encrypted_data_cannot_change(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_storage_bson(tmp_path / "db", {"kmip": {"keyId": "17"}})
    before = sha256(conf)
    result = run(base_args(conf, pki, cipher_mode="AES256-GCM"), capsys)
    assert result["failed"] and result["msg"].startswith("cipher_mode:") and "AES256-CBC" in result["msg"]
    assert sha256(conf) == before


@pytest.mark.parametrize(
    "encryption, data_files, reason",
    [
        (None, True, "storage.bson without encryption options"),
        ("no storage.bson", True, "WiredTiger files"),
        ({"vault": {"keyId": "secret/x", "version": 1}}, True, "HashiCorp Vault"),
        ({"keyId": "local"}, True, "a local key file"),
    ],
)
def test_encryption_over_existing_data_is_refused(
    conf: Path,
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    encryption: Any,
    data_files: bool,
    reason: str,
) -> None:
    db = tmp_path / "db"
    if encryption == "no storage.bson":
        db.mkdir()
        (db / "WiredTiger.wt").write_bytes(b"\0")
    else:
        write_storage_bson(db, encryption, data_files)
    before = sha256(conf)
    result = run(base_args(conf, pki), capsys)
    assert result["failed"] and result["msg"].startswith("state:") and reason in result["msg"]
    assert "initial sync" in result["msg"]
    assert sha256(conf) == before


def test_absent_on_encrypted_data_is_refused(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(base_args(conf, pki), capsys)["changed"] is True
    write_storage_bson(tmp_path / "db", {"kmip": {"keyId": "17"}})
    before = sha256(conf)
    result = run({"path": str(conf), "state": "absent", "service_user": ME}, capsys)
    assert result["failed"] and result["msg"].startswith("state:")
    assert sha256(conf) == before


# -- the happy path -------------------------------------------------------------------------


def test_check_mode_diff_then_write_then_idempotent(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = base_args(
        conf,
        pki,
        client_certificate_file=str(pki.client_pem_encrypted),
        client_certificate_password=pki.password,
        connect_retries=1,
        backup=True,
    )
    before = sha256(conf)
    checked = run(args, capsys, check=True, diff=True)
    assert checked["changed"] is True and checked["restart_required"] is True
    assert sha256(conf) == before, "check mode must not write"
    assert "clientCertificatePassword: '********'" in checked["diff"]["after"]
    assert checked["diff"]["before"] == "security:\n  authorization: enabled\n"
    assert pki.password not in json.dumps(checked)

    written = run(args, capsys, diff=True)
    assert written["changed"] is True
    assert pki.password not in json.dumps(written)
    text = conf.read_text()
    assert f"clientCertificatePassword: {pki.password}" in text or f"'{pki.password}'" in text
    st = conf.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600, "a file holding the password is 0600"
    assert st.st_uid == os.getuid()
    backup = Path(written["backup_file"])
    assert backup.read_text() == CONF.format(db=tmp_path / "db")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".mongod_kmip_config")] == []

    again = run(args, capsys, check=True, diff=True)
    assert again["changed"] is False and again["restart_required"] is False
    assert again["diff"]["before"] == again["diff"]["after"]
    final = run(args, capsys)
    assert final["changed"] is False
    assert sha256(conf) == hashlib.sha256(text.encode()).hexdigest()


def test_mode_and_group_are_applied_alone(conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(base_args(conf, pki), capsys)["changed"] is True
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644, "without a password the mode is left alone"
    content = conf.read_bytes()
    result = run(base_args(conf, pki, mode="0640", group=MY_GROUP), capsys)
    assert result["changed"] is True and result["restart_required"] is False
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert conf.read_bytes() == content


def test_rotate_master_key_is_removed_with_a_warning(conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    conf.write_text(conf.read_text() + "  kmip:\n    serverName: old\n    rotateMasterKey: true\n")
    result = run(base_args(conf, pki), capsys)
    assert result["changed"] is True
    # also sent with module.warn (global state in-process, so the note is asserted here)
    assert any("rotateMasterKey" in note and "one-shot" in note for note in result["notes"])
    assert "rotateMasterKey" not in conf.read_text()


def test_dropping_the_key_identifier_is_told(conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(base_args(conf, pki, key_identifier="42"), capsys)["notes"] == []
    result = run(base_args(conf, pki), capsys)
    assert result["changed"] is True
    assert any("removed security.kmip.keyIdentifier" in note and "storage.bson" in note for note in result["notes"])
    assert "keyIdentifier" not in conf.read_text()


def test_absent_removes_only_the_encryption_keys(conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    original = conf.read_text()
    assert run(base_args(conf, pki, cipher_mode="AES256-GCM"), capsys)["changed"] is True
    result = run({"path": str(conf), "state": "absent", "service_user": ME}, capsys)
    assert result["changed"] is True and result["security"] == {"authorization": "enabled"}
    assert conf.read_text() == original


def _fail_with(errno_value: int, name: str):
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno_value, os.strerror(errno_value), name)

    return fail


@pytest.mark.parametrize(
    "where, errno_value, cause",
    [
        ("replace", 1, "operation not permitted (the file or its directory may be immutable"),
        ("replace", 30, "read-only file system"),
        ("mkstemp", 13, "permission denied"),
        ("mkstemp", 28, "no space left on the device"),
    ],
)
def test_a_write_failure_is_a_refusal_naming_the_file_and_the_cause(
    conf: Path,
    pki: Pki,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    errno_value: int,
    cause: str,
) -> None:
    from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod import conf_update

    before = sha256(conf)
    if where == "replace":
        monkeypatch.setattr(conf_update.os, "replace", _fail_with(errno_value, str(conf)))
    else:
        monkeypatch.setattr(conf_update.tempfile, "mkstemp", _fail_with(errno_value, str(conf.parent)))
    result = run(base_args(conf, pki), capsys)
    assert result["failed"] is True and result["error_kind"] == "write_failed", result
    assert result["msg"].startswith(f"path: cannot write {conf}: {cause}"), result["msg"]
    assert "Errno" not in result["msg"] and "Traceback" not in json.dumps(result)
    assert sha256(conf) == before
    assert [p.name for p in conf.parent.iterdir() if p.name.startswith(".mongod_kmip_config.")] == []


def test_an_immutable_file_is_a_refusal(conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    """chattr +i as root where the file system allows it (else the monkeypatched cases above cover it)."""
    import shutil
    import subprocess

    chattr = shutil.which("chattr")
    if chattr is None or os.geteuid() != 0 or subprocess.run([chattr, "+i", str(conf.parent)], check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        before = sha256(conf)
        result = run(base_args(conf, pki), capsys)
    finally:
        subprocess.run([chattr, "-i", str(conf.parent)], check=True)
    assert result["failed"] is True and result["error_kind"] == "write_failed", result
    assert result["msg"].startswith(f"path: cannot write {conf}: operation not permitted"), result["msg"]
    assert sha256(conf) == before


# -- replace_key_management: key file / Vault -> KMIP on an emptied member only ---------------

KEY_FILE_SECURITY = "  enableEncryption: true\n  encryptionKeyFile: /etc/key\n"
VAULT_SECURITY = "  enableEncryption: true\n  vault:\n    serverName: vault\n"


@pytest.mark.parametrize("security, key", [(KEY_FILE_SECURITY, "encryptionKeyFile"), (VAULT_SECURITY, "vault")])
@pytest.mark.parametrize("db_state", ["missing", "empty"])
def test_replace_key_management_on_an_empty_db_path_writes_kmip(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], security: str, key: str, db_state: str
) -> None:
    conf.write_text(conf.read_text() + security)
    if db_state == "empty":
        (conf.parent / "db").mkdir()
    result = run(base_args(conf, pki, replace_key_management=True), capsys)
    assert result["changed"] and not result.get("failed")
    assert key not in result["security"] and result["security"]["kmip"]["serverName"] == "127.0.50.1,127.0.50.2"
    assert any(f"security.{key}" in note for note in result["notes"])
    assert key not in conf.read_text() and "kmip:" in conf.read_text()
    # idempotent
    assert run(base_args(conf, pki, replace_key_management=True), capsys)["changed"] is False


@pytest.mark.parametrize("content", ["key.db", "storage.bson", "WiredTiger"])
def test_replace_key_management_with_data_is_refused_untouched(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    conf.write_text(conf.read_text() + KEY_FILE_SECURITY)
    db = conf.parent / "db"
    db.mkdir()
    if content == "key.db":
        (db / "key.db").mkdir()
    elif content == "storage.bson":
        write_storage_bson(db, None, data_files=False)
    else:
        (db / content).write_bytes(b"x")
    before = sha256(conf)
    for check in (False, True):
        result = run(base_args(conf, pki, replace_key_management=True), capsys, check=check)
        assert result["failed"] and result["msg"].startswith("replace_key_management:")
        assert content in result["msg"]
    assert sha256(conf) == before


def test_without_replace_key_management_the_key_file_is_still_refused_on_an_empty_db_path(
    conf: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    conf.write_text(conf.read_text() + KEY_FILE_SECURITY)
    (conf.parent / "db").mkdir()
    before = sha256(conf)
    result = run(base_args(conf, pki), capsys)
    assert result["failed"] and result["msg"].startswith("security.encryptionKeyFile:")
    assert sha256(conf) == before
