# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_tls.certificates: the one reader of the CA file and the client PEM, judged as OpenSSL would (no network)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import (
    client_identity_problems,
    load_ca_file,
    load_client_identity,
    load_client_pem,
    split_pem,
)
from kmiplab.pki import LabPki


def blocks_of(path: Path) -> list[str]:
    """The PEM blocks of a file as text, in order."""
    return [block.data.decode() + "\n" for block in split_pem(path.read_bytes())]


def test_good_identity(pki: LabPki) -> None:
    identity = load_client_identity(str(pki.client("mongod1").pem), None)
    result = identity.as_result()
    assert result["common_name"] == "mongod1" and result["chain_length"] == 2
    assert result["client_auth_eku"] is True
    assert result["password_opens_key"] is None and result["days_left"] > 0
    assert client_identity_problems(identity) == []


def test_encrypted_identity(pki: LabPki) -> None:
    client = pki.encrypted_client
    identity = load_client_identity(str(client.pem), client.password)
    assert identity.key_encrypted and identity.as_result()["password_opens_key"] is True
    assert client.password not in repr(identity) and client.password not in str(identity.as_result())
    with pytest.raises(errors.InvalidOptionError) as caught:
        load_client_identity(str(client.pem), None)
    assert caught.value.option == "client_certificate_password"
    with pytest.raises(errors.InvalidOptionError) as caught:
        load_client_identity(str(client.pem), "guess")
    assert caught.value.option == "client_certificate_password" and "guess" not in str(caught.value)


def test_a_password_for_a_clear_key_is_a_warning_not_an_error(pki: LabPki) -> None:
    pem = load_client_pem(str(pki.client("mongod1").pem), "unused")
    (warning,) = pem.warnings
    assert "not encrypted" in warning and "unused" not in warning


def test_pem_without_key(pki: LabPki) -> None:
    with pytest.raises(errors.InvalidOptionError) as caught:
        load_client_identity(str(pki.bad.client_without_key.pem), None)
    assert caught.value.option == "client_certificate_file" and "no PEM private key" in str(caught.value)


def test_pem_without_certificate(pki: LabPki, tmp_path: Path) -> None:
    key_only = tmp_path / "key.pem"
    key_only.write_text(blocks_of(pki.client("mongod1").pem)[0])
    with pytest.raises(errors.InvalidOptionError, match="no PEM certificate"):
        load_client_pem(str(key_only), None)


def test_missing_and_unreadable_files(pki: LabPki, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidOptionError, match="does not exist"):
        load_client_identity(str(tmp_path / "nope.pem"), None)
    with pytest.raises(errors.InvalidOptionError) as caught:
        load_ca_file("server_ca_file", str(tmp_path))
    assert caught.value.option == "server_ca_file" and "is a directory" in str(caught.value)
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(errors.InvalidOptionError, match="no PEM certificate"):
        load_ca_file("server_ca_file", str(empty))


def test_ca_file_certificates_are_all_read(pki: LabPki) -> None:
    (ca,) = load_ca_file("server_ca_file", str(pki.ca.cert))
    assert ca.subject == ca.issuer


@pytest.mark.parametrize(
    ("variant", "fragment"),
    [("expired_client", "expired"), ("no_eku_client", "clientAuth"), ("server_auth_only_client", "clientAuth")],
)
def test_identity_problems(pki: LabPki, variant: str, fragment: str) -> None:
    client = getattr(pki.bad, variant)
    problems = client_identity_problems(load_client_identity(str(client.pem), None))
    assert any(fragment in p for p in problems)


def openssl_accepts(path: Path) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(str(path))
    except ssl.SSLError:
        return False
    return True


@pytest.mark.parametrize(
    "order",
    [("key", "leaf", "ca"), ("leaf", "key", "ca"), ("leaf", "ca", "key"), ("ca", "leaf", "key"), ("key", "ca", "leaf")],
)
def test_the_first_certificate_is_the_client_certificate_as_openssl_says(
    pki: LabPki, tmp_path: Path, order: tuple[str, ...]
) -> None:
    """The file is judged as OpenSSL (so mongod) loads it: accepted exactly when OpenSSL accepts it."""
    key, leaf, ca = blocks_of(pki.client("mongod1").pem)
    parts = {"key": key, "leaf": leaf, "ca": ca}
    path = tmp_path / "client.pem"
    path.write_text("".join(parts[name] for name in order))
    expected = openssl_accepts(path)
    assert expected is (order.index("leaf") < order.index("ca")), "what OpenSSL does, for the record"
    if expected:
        assert load_client_pem(str(path), None).leaf.subject.rfc4514_string() == "CN=mongod1"
    else:
        with pytest.raises(errors.InvalidOptionError, match=r"first certificate .* does not belong"):
            load_client_pem(str(path), None)


def test_key_of_another_certificate(pki: LabPki, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.pem"
    key_of_one = blocks_of(pki.client("mongod1").pem)[0]
    certs_of_other = "".join(blocks_of(pki.client("mongod2").pem)[1:])
    mixed.write_text(key_of_one + certs_of_other)
    assert not openssl_accepts(mixed)
    with pytest.raises(errors.InvalidOptionError) as caught:
        load_client_identity(str(mixed), None)
    assert caught.value.option == "client_certificate_file" and "does not belong" in str(caught.value)


def test_split_pem_keeps_file_order_and_labels() -> None:
    data = b"junk\n-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\ntext\n"
    data += b"-----BEGIN ENCRYPTED PRIVATE KEY-----\r\nQQ==\r\n-----END ENCRYPTED PRIVATE KEY-----\n"
    data += b"-----BEGIN CERTIFICATE-----\nQQ==\n-----END PRIVATE KEY-----\n"  # mismatched end: not a block
    blocks = split_pem(data)
    assert [b.label for b in blocks] == ["CERTIFICATE", "ENCRYPTED PRIVATE KEY"]
    assert [(b.is_certificate, b.is_private_key) for b in blocks] == [(True, False), (False, True)]
