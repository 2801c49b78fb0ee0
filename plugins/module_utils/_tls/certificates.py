# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Reading and describing the certificates mongod uses for KMIP, with ``cryptography``.

The client PEM is checked here before any connection, so a missing key or a wrong password
is reported against the option that names the file instead of as an obscure TLS failure.
Nothing returned here contains key material or the password.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = str(exc)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def describe_certificate(cert: x509.Certificate) -> dict[str, Any]:
    """Subject, issuer and validity of one certificate, as returned by the modules."""
    not_after = cert.not_valid_after_utc
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": (not_after - _now()).days,
        "expired": not_after < _now(),
    }


def describe_der_certificate(der: bytes) -> dict[str, Any]:
    return describe_certificate(x509.load_der_x509_certificate(der))


def has_client_auth(cert: x509.Certificate) -> bool | None:
    """Whether the certificate may be used as a TLS client (EKU clientAuth).

    ``None`` when it has no EKU extension at all (allowed by TLS, refused by PyKMIP).
    """
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku


def read_option_file(option: str, path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InvalidOptionError(option, f"file {path} does not exist") from None
    except PermissionError:
        raise InvalidOptionError(option, f"file {path} is not readable by this user") from None
    except IsADirectoryError:
        raise InvalidOptionError(option, f"{path} is a directory, not a PEM file") from None
    except OSError as exc:
        raise InvalidOptionError(option, f"cannot read {path}: {exc.strerror}") from None


def check_ca_file(path: str) -> list[dict[str, Any]]:
    """The CA certificates of ``server_ca_file``; fails if there are none."""
    data = read_option_file("server_ca_file", path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InvalidOptionError("server_ca_file", f"{path} holds no PEM certificate") from None
    return [describe_certificate(cert) for cert in certs]


@dataclasses.dataclass
class ClientIdentity:
    """What the client PEM holds, for reporting. No key material, no password."""

    path: str
    certificate: dict[str, Any]
    chain_length: int
    client_auth_eku: bool | None
    key_matches_certificate: bool
    key_encrypted: bool
    common_name: str | None

    def as_result(self) -> dict[str, Any]:
        return {
            "path": self.path,
            **self.certificate,
            "chain_length": self.chain_length,
            "client_auth_eku": self.client_auth_eku,
            "key_matches_certificate": self.key_matches_certificate,
            "key_encrypted": self.key_encrypted,
            "password_opens_key": True if self.key_encrypted else None,
            "common_name": self.common_name,
        }


def _pem_blocks(data: bytes, marker: bytes) -> list[bytes]:
    blocks = []
    start = 0
    while True:
        begin = data.find(b"-----BEGIN " + marker, start)
        if begin < 0:
            return blocks
        end_marker = b"-----END " + marker
        end = data.find(end_marker, begin)
        if end < 0:
            return blocks
        end = data.find(b"-----", end + len(end_marker)) + 5
        blocks.append(data[begin:end])
        start = end


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_client_identity(path: str, password: str | None) -> ClientIdentity:
    """Check the client PEM as mongod needs it: a private key, its certificate, the chain.

    Raises ``InvalidOptionError`` naming ``client_certificate_file`` or
    ``client_certificate_password``; the password itself is never part of a message.
    """
    option = "client_certificate_file"
    data = read_option_file(option, path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InvalidOptionError(option, f"{path} holds no PEM certificate") from None
    key_blocks = [b for b in _pem_blocks(data, b"") if b"PRIVATE KEY-----" in b.split(b"\n", 1)[0]]
    if not key_blocks:
        raise InvalidOptionError(
            option, f"{path} holds no private key; mongod needs one PEM file with the key and the certificate chain"
        )
    key_pem = key_blocks[0]
    encrypted = b"ENCRYPTED" in key_pem.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in key_pem
    if encrypted and password is None:
        raise InvalidOptionError(
            "client_certificate_password", f"the private key in {path} is encrypted and no password was given"
        )
    try:
        key = serialization.load_pem_private_key(
            key_pem, password=password.encode() if (encrypted and password is not None) else None
        )
    except (ValueError, TypeError):
        if encrypted:
            raise InvalidOptionError(
                "client_certificate_password", f"does not open the private key in {path}"
            ) from None
        raise InvalidOptionError(option, f"the private key in {path} cannot be read") from None
    key_spki = _spki(key.public_key())
    # PEM files sometimes put the CA first: the leaf is the certificate of this key.
    leaf = next((cert for cert in certs if _spki(cert.public_key()) == key_spki), None)
    matches = leaf is not None
    leaf = leaf or certs[0]
    cns = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return ClientIdentity(
        path=path,
        certificate=describe_certificate(leaf),
        chain_length=len(certs),
        client_auth_eku=has_client_auth(leaf),
        key_matches_certificate=matches,
        key_encrypted=encrypted,
        common_name=str(cns[0].value) if cns else None,
    )


def client_identity_problems(identity: ClientIdentity) -> list[str]:
    """Sentences describing why a KMIP server (or mongod) would refuse this identity."""
    problems = []
    if not identity.key_matches_certificate:
        problems.append("the private key does not belong to any certificate in the file")
    if identity.certificate["expired"]:
        problems.append(f"the client certificate expired on {identity.certificate['not_after']}")
    if identity.client_auth_eku is not True:
        problems.append(
            "the client certificate lacks extendedKeyUsage clientAuth; PyKMIP and other servers "
            "reject the TLS handshake"
        )
    return problems
