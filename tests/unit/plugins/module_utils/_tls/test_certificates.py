# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tls_inspect: the client PEM checks run before any connection (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import (
    check_ca_file,
    client_identity_problems,
    load_client_identity,
)
from kmiplab.pki import LabPki, build_lab_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return build_lab_pki(tmp_path_factory.mktemp("pki"), servers={"kmip1": ("127.0.20.10",)})


def test_good_identity(pki: LabPki) -> None:
    identity = load_client_identity(str(pki.client("mongod1").pem), None)
    result = identity.as_result()
    assert result["common_name"] == "mongod1"
    assert result["client_auth_eku"] is True and result["key_matches_certificate"] is True
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


def test_pem_without_key(pki: LabPki) -> None:
    with pytest.raises(errors.InvalidOptionError) as caught:
        load_client_identity(str(pki.bad.client_without_key.pem), None)
    assert caught.value.option == "client_certificate_file" and "no private key" in str(caught.value)


def test_missing_and_unreadable_files(pki: LabPki, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidOptionError, match="does not exist"):
        load_client_identity(str(tmp_path / "nope.pem"), None)
    with pytest.raises(errors.InvalidOptionError) as caught:
        check_ca_file(str(tmp_path))
    assert caught.value.option == "server_ca_file"
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(errors.InvalidOptionError, match="no PEM certificate"):
        check_ca_file(str(empty))


@pytest.mark.parametrize(
    ("variant", "fragment"),
    [("expired_client", "expired"), ("no_eku_client", "clientAuth"), ("server_auth_only_client", "clientAuth")],
)
def test_identity_problems(pki: LabPki, variant: str, fragment: str) -> None:
    client = getattr(pki.bad, variant)
    problems = client_identity_problems(load_client_identity(str(client.pem), None))
    assert any(fragment in p for p in problems)


def test_key_of_another_certificate(pki: LabPki, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.pem"
    one = pki.client("mongod1").pem.read_text()
    other = pki.client("mongod2").pem.read_text()
    key_of_one = one[one.index("-----BEGIN") : one.index("-----END", one.index("PRIVATE KEY")) + 40]
    key_of_one = key_of_one[: key_of_one.index("-----", key_of_one.index("-----END") + 8) + 5]
    certs_of_other = other[other.index("-----BEGIN CERTIFICATE") :]
    mixed.write_text(key_of_one + "\n" + certs_of_other)
    identity = load_client_identity(str(mixed), None)
    assert identity.key_matches_certificate is False
    assert any("does not belong" in p for p in client_identity_problems(identity))
