# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The one reader of the PEM files mongod uses for KMIP: the CA file and the client PEM.

Every module judges these files here, the way OpenSSL (and so mongod) will: the client PEM is
one file with the private key and the certificate chain, and the *first* certificate in it is
the client's own (``SSL_CTX_use_certificate_chain_file``), so its key must be the private key of
the file. Problems are raised against the option that names the file, before any connection;
nothing returned or raised holds key material or the password.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import CRYPTOGRAPHY
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError

with CRYPTOGRAPHY.importing():
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
#: labels OpenSSL reads as a certificate in a certificate chain file
_CERTIFICATE_LABELS = ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE")


@dataclasses.dataclass(frozen=True)
class PemBlock:
    label: str  # e.g. CERTIFICATE, PRIVATE KEY, ENCRYPTED PRIVATE KEY, RSA PRIVATE KEY
    data: bytes = dataclasses.field(repr=False)

    @property
    def is_certificate(self) -> bool:
        return self.label in _CERTIFICATE_LABELS

    @property
    def is_private_key(self) -> bool:
        return self.label.endswith("PRIVATE KEY")


def split_pem(data: bytes) -> list[PemBlock]:
    """The PEM blocks of a file, in file order (text between them is ignored, as OpenSSL does)."""
    return [PemBlock(match.group(1).decode(), match.group(0)) for match in _PEM_BLOCK.finditer(data)]


def read_option_file(option: str, path: str) -> bytes:
    """The bytes of the file an option names; every failure is said against that option."""
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


def load_ca_file(option: str, path: str) -> list[x509.Certificate]:
    """The certificates of a CA file; a file without any is refused."""
    CRYPTOGRAPHY.require()
    blocks = split_pem(read_option_file(option, path))
    certificates = [_certificate(option, path, block) for block in blocks if block.is_certificate]
    if not certificates:
        raise InvalidOptionError(option, f"{path} holds no PEM certificate")
    return certificates


@dataclasses.dataclass
class ClientPem:
    """A client PEM that OpenSSL would load: its key opens and belongs to the first certificate."""

    path: str
    leaf: x509.Certificate
    chain: list[x509.Certificate]  # the certificates after the leaf
    key_encrypted: bool
    #: what the operator should hear although the file is usable
    warnings: list[str] = dataclasses.field(default_factory=list)


def load_client_pem(
    path: str,
    password: str | None,
    option: str = "client_certificate_file",
    password_option: str = "client_certificate_password",
) -> ClientPem:
    """Check a client PEM as mongod needs it; raise ``InvalidOptionError`` naming the option at fault.

    The password itself is never part of a message.
    """
    CRYPTOGRAPHY.require()
    blocks = split_pem(read_option_file(option, path))
    keys = [block for block in blocks if block.is_private_key]
    certificates = [block for block in blocks if block.is_certificate]
    if not keys:
        raise InvalidOptionError(
            option, f"{path} holds no PEM private key; mongod needs the private key and the certificate in one file"
        )
    if not certificates:
        raise InvalidOptionError(
            option, f"{path} holds no PEM certificate; mongod needs the private key and the certificate in one file"
        )
    key, encrypted, warnings = _open_key(keys[0], path, password, option, password_option)
    leaf, *chain = [_certificate(option, path, block) for block in certificates]
    if _spki(leaf.public_key()) != _spki(key.public_key()):
        raise InvalidOptionError(
            option,
            f"the first certificate in {path} does not belong to its private key: OpenSSL, and so mongod, takes the "
            "first certificate as the client's own; put the client certificate first, then its chain",
        )
    return ClientPem(path=path, leaf=leaf, chain=chain, key_encrypted=encrypted, warnings=warnings)


def _open_key(
    block: PemBlock, path: str, password: str | None, option: str, password_option: str
) -> tuple[Any, bool, list[str]]:
    """(private key, whether it is encrypted, warnings), opened as OpenSSL would with ``password``."""
    try:
        return (
            serialization.load_pem_private_key(block.data, password=None),
            False,
            _unused_password(path, password, password_option),
        )
    except TypeError:  # cryptography's way of saying that the key is encrypted
        pass
    except ValueError:
        raise InvalidOptionError(option, f"the private key in {path} cannot be read") from None
    if password is None:
        raise InvalidOptionError(password_option, f"is required: the private key in {path} is encrypted")
    try:
        return serialization.load_pem_private_key(block.data, password=password.encode()), True, []
    except (TypeError, ValueError):
        raise InvalidOptionError(
            password_option, f"does not open the private key in {path} (wrong password or unreadable key)"
        ) from None


def _unused_password(path: str, password: str | None, password_option: str) -> list[str]:
    if password is None:
        return []
    return [f"{password_option} is set but the private key in {path} is not encrypted; mongod ignores the password"]


def _certificate(option: str, path: str, block: PemBlock) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(block.data)
    except ValueError:
        raise InvalidOptionError(option, f"a certificate in {path} cannot be read") from None


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- describing certificates, for results -------------------------------------------------------


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


@dataclasses.dataclass
class ClientIdentity:
    """What the client PEM holds, for reporting. No key material, no password."""

    path: str
    certificate: dict[str, Any]
    chain_length: int
    client_auth_eku: bool | None
    key_encrypted: bool
    common_name: str | None

    def as_result(self) -> dict[str, Any]:
        return {
            "path": self.path,
            **self.certificate,
            "chain_length": self.chain_length,
            "client_auth_eku": self.client_auth_eku,
            "key_encrypted": self.key_encrypted,
            "password_opens_key": True if self.key_encrypted else None,
            "common_name": self.common_name,
        }


def load_client_identity(path: str, password: str | None) -> ClientIdentity:
    """``load_client_pem``, described for the result of kmip_server_info."""
    pem = load_client_pem(path, password)
    names = pem.leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return ClientIdentity(
        path=path,
        certificate=describe_certificate(pem.leaf),
        chain_length=1 + len(pem.chain),
        client_auth_eku=has_client_auth(pem.leaf),
        key_encrypted=pem.key_encrypted,
        common_name=str(names[0].value) if names else None,
    )


def client_identity_problems(identity: ClientIdentity) -> list[str]:
    """Sentences describing why a KMIP server would refuse this (loadable) identity."""
    problems = []
    if identity.certificate["expired"]:
        problems.append(f"the client certificate expired on {identity.certificate['not_after']}")
    if identity.client_auth_eku is not True:
        problems.append(
            "the client certificate lacks extendedKeyUsage clientAuth; PyKMIP and other servers "
            "reject the TLS handshake"
        )
    return problems
