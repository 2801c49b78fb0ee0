# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_conf over a corpus of real-world mongod.conf files: only the security block changes.

The block boundaries are found here with a deliberately simple line scan (independent of the
code under test): from ``security:`` at column 0 to the last indented line before the next
top-level key.
"""

from __future__ import annotations

import re

import pytest
from ruamel.yaml import YAML

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import (
    ENCRYPTION_KEYS,
    KmipEncryptionConfig,
    remove_encryption,
)
from unit.utils import FIXTURES

CORPUS = FIXTURES / "mongod_conf"
REFUSED = {"vault_encryption.conf": "security.vault", "keyfile_encryption.conf": "security.encryptionKeyFile"}
EDITABLE = sorted(p.name for p in CORPUS.glob("*.conf") if p.name not in REFUSED)
OPTIONS = {
    "server_name": ["kmip1.example.com", "kmip2.example.com"],
    "port": 5697,
    "server_ca_file": "/etc/mongodb/kmip-ca.pem",
    "client_certificate_file": "/etc/mongodb/kmip-client.pem",
    "client_certificate_password": "p@ss: #word",
    "key_identifier": "42",
    "connect_retries": 2,
    "connect_timeout_ms": 3000,
    "cipher_mode": "AES256-GCM",
}
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


def load_text(name: str, newline: str) -> str:
    text = (CORPUS / name).read_bytes().decode("utf-8")
    assert "\r" not in text, "corpus files are stored with LF; CRLF variants are made here"
    return text.replace("\n", newline)


def split_security(text: str) -> tuple[str, str]:
    """(everything outside the security block, the block)."""
    lines = _LINE.findall(text)
    start = next((i for i, line in enumerate(lines) if line.startswith("security:")), None)
    if start is None:
        return text, ""
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"[^\s#]", lines[i])), len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return "".join(lines[:start] + lines[end:]), "".join(lines[start:end])


def apply_present(text: str) -> tuple[str, list[str]]:
    config = KmipEncryptionConfig.from_options(OPTIONS)
    notes: list[str] = []
    return MongodConf(text).edit_security(lambda security: notes.extend(config.apply_to(security))), notes


def parse(text: str) -> dict:
    return YAML(typ="safe").load(text) or {}


@pytest.fixture(params=["\n", "\r\n"], ids=["LF", "CRLF"])
def newline(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("name", EDITABLE)
def test_only_the_security_block_changes(name: str, newline: str) -> None:
    original = load_text(name, newline)
    updated, _changes = apply_present(original)

    outside_before, block_before = split_security(original)
    outside_after, block_after = split_security(updated)
    if block_before or not original or original.endswith(newline):
        assert outside_after == outside_before
    else:  # the new block needs the last line terminated first
        assert outside_after == outside_before + newline
    assert block_after, "a security block was written"

    # line endings: a CRLF file stays CRLF everywhere, an LF file gets no CR
    if "\r\n" in original:
        assert "\n" not in updated.replace("\r\n", "")
    else:
        assert "\r" not in updated

    data_before, data_after = parse(original), parse(updated)
    security = data_after.pop("security")
    data_before.pop("security", None)
    assert data_after == data_before
    assert security["enableEncryption"] is True
    assert security["encryptionCipherMode"] == "AES256-GCM"
    assert security["kmip"] == {
        "serverName": "kmip1.example.com,kmip2.example.com",
        "port": 5697,
        "serverCAFile": "/etc/mongodb/kmip-ca.pem",
        "clientCertificateFile": "/etc/mongodb/kmip-client.pem",
        "clientCertificatePassword": "p@ss: #word",
        "keyIdentifier": "42",
        "connectRetries": 2,
        "connectTimeoutMS": 3000,
    }

    # idempotent: a second run leaves every byte
    twice, notes = apply_present(updated)
    assert twice == updated
    assert notes == []

    # absent gives back the other security keys (and the original file when it had no security)
    removed = MongodConf(updated).edit_security(remove_encryption)
    other_keys = {k: v for k, v in (parse(original).get("security") or {}).items() if k not in ENCRYPTION_KEYS}
    assert (parse(removed).get("security") or {}) == other_keys
    assert split_security(removed)[0] == outside_after
    if not block_before:
        assert removed in (original, original + newline)


def test_unchanged_section_keeps_its_bytes() -> None:
    text = "security:\n    authorization:    enabled   # odd spacing\nnet:\n  port: 1\n"
    assert MongodConf(text).edit_security(lambda security: None) == text


def test_four_space_indentation_is_followed() -> None:
    updated, _changes = apply_present(load_text("four_space_indent.conf", "\n"))
    block = split_security(updated)[1]
    assert "\n    enableEncryption: true\n" in block
    assert "\n        serverName: kmip1.example.com,kmip2.example.com\n" in block


def test_comments_inside_the_security_block_survive() -> None:
    updated, _changes = apply_present(load_text("replica_member_auth.conf", "\n"))
    assert "authorization: enabled   # never turn this off" in updated
    assert "\n  - 10.0.0.0/8\n" in updated  # the sequence style of the block is kept


def test_rotate_master_key_and_unknown_keys_are_removed_and_reported() -> None:
    updated, notes = apply_present(load_text("existing_kmip_rotation_left.conf", "\n"))
    kmip = parse(updated)["security"]["kmip"]
    assert "rotateMasterKey" not in kmip
    assert "useLegacyProtocol" not in kmip
    assert any("rotateMasterKey" in note and "one-shot" in note for note in notes)
    assert any("useLegacyProtocol" in note for note in notes)
    assert "# KMIP settings written by hand in 2024" in updated


def test_new_section_goes_before_the_document_end_marker() -> None:
    updated, _changes = apply_present(load_text("anchors_and_flow.conf", "\n"))
    assert updated.endswith("...\n")
    assert updated.index("security:") < updated.rindex("...")


@pytest.mark.parametrize("name, option", sorted(REFUSED.items()))
def test_other_key_management_is_refused(name: str, option: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        apply_present(load_text(name, "\n"))
    assert caught.value.option == option
    assert "rolling initial sync" in str(caught.value)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("net:\n  port: 1\n---\nnet:\n  port: 2\n", "several YAML documents"),
        ("- net\n- storage\n", "mapping of mongod options"),
        ("{net: {port: 1}, storage: {dbPath: /x}}\n", "flow-style"),
        ("security: enabled\n", "security in mongod.conf must be a mapping"),
        ("net:\n  port: 1\n bad: [\n", "not valid YAML"),
    ],
)
def test_unusable_files_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        MongodConf(text).edit_security(lambda security: KmipEncryptionConfig.from_options(OPTIONS).apply_to(security))
    assert caught.value.option == "path"
    assert reason in str(caught.value)


def test_parse_errors_do_not_quote_the_file() -> None:
    text = "security:\n  kmip:\n    clientCertificatePassword: 'hunter2\n"
    with pytest.raises(InvalidOptionError) as caught:
        MongodConf(text)
    assert "hunter2" not in str(caught.value)
    assert "line" in str(caught.value)


def test_db_path_is_read_from_storage() -> None:
    assert MongodConf(load_text("percona_package_default.conf", "\n")).db_path == "/var/lib/mongodb"
    assert MongodConf(load_text("net_only.conf", "\n")).db_path is None


@pytest.mark.parametrize(
    "text",
    [
        "security:\n  kmip:\n    clientCertificatePassword: S3cretPw\n    clientCertificatePassword: S3cretPw2\n",
        "security:\n  kmip:\n    clientCertificatePassword: 'S3cretPw\n",
        'security:\n  kmip:\n    clientCertificatePassword: "S3cretPw\\q"\n',
        "security:\n  kmip: {clientCertificatePassword: S3cretPw: x}\n",
    ],
)
def test_a_broken_file_is_refused_by_line_and_column_without_its_text(tmp_path, text: str) -> None:
    path = tmp_path / "mongod.conf"
    path.write_text(text)
    with pytest.raises(InvalidOptionError) as caught:
        MongodConf.read(str(path), option="mongod_config").security  # noqa: B018
    assert caught.value.option == "mongod_config"
    assert "S3cretPw" not in str(caught.value)
    assert re.search(r"line \d+, column \d+", str(caught.value)), str(caught.value)
