# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throw-away PKI for KMIP tests: CAs, server certificates, mongod client PEMs, bad variants.

Everything is written under one directory. Files holding private keys are created 0600.
Client identities are written as ONE PEM holding the private key and the certificate chain
(leaf, then CA), which is what mongod's ``security.kmip.clientCertificateFile`` wants and what
PyKMIP's client accepts as ``certfile``.

Keys are EC P-256 by default: RSA-2048 generation takes about a second on the shared CI
machines, and OpenSSL, PyKMIP (ECDHE-ECDSA suites) and mongod all accept EC keys.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
KeyType = Literal["ec", "rsa"]
#: what a client certificate says about its use: mongod needs clientAuth
ClientUsage = Literal["client_auth", "server_auth_only", "no_eku"]

_ONE_DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    """A CA able to sign; ``cert`` is its PEM certificate (use it as a CA file)."""

    name: str
    cert: Path
    key: Path
    certificate: x509.Certificate = dataclasses.field(repr=False, compare=False)
    private_key: PrivateKey = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class ServerCert:
    """A KMIP server identity: PEM certificate (leaf + issuing CA) and its private key."""

    cert: Path
    key: Path
    #: the IP addresses and DNS names in the subjectAltName
    names: tuple[str, ...]
    #: the PEM file of the CA that signed it (what a client must trust)
    issuer_ca: Path


@dataclasses.dataclass(frozen=True)
class ClientCert:
    """A mongod identity. ``pem`` holds key + chain unless built ``without_key``."""

    cn: str
    pem: Path
    cert: Path
    #: password of the encrypted key in ``pem``; never printed (repr=False)
    password: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class BadCerts:
    """Variants that a correct client or server must refuse."""

    #: client cert whose validity ended yesterday
    expired_client: ClientCert
    #: client cert with no extendedKeyUsage at all (PyKMIP refuses it at the KMIP layer)
    no_eku_client: ClientCert
    #: client cert with extendedKeyUsage serverAuth only (OpenSSL refuses it in the handshake)
    server_auth_only_client: ClientCert
    #: client cert signed by the other CA (refused in the handshake)
    other_ca_client: ClientCert
    #: a PEM holding only the certificate chain, no private key
    client_without_key: ClientCert
    #: server cert for the names of the first server, signed by the other CA
    other_ca_server: ServerCert
    #: server cert signed by the lab CA, for names that are not the server's
    wrong_host_server: ServerCert


@dataclasses.dataclass(frozen=True)
class LabPki:
    """The paths of a complete test PKI (see ``build_lab_pki``)."""

    directory: Path
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    #: label -> server certificate (labels as given to ``build_lab_pki``)
    servers: Mapping[str, ServerCert]
    #: CN -> client identity, one per mongod host
    clients: Mapping[str, ClientCert]
    #: a client whose key is encrypted with ``encrypted_client.password``
    encrypted_client: ClientCert
    bad: BadCerts

    def client(self, cn: str) -> ClientCert:
        try:
            return self.clients[cn]
        except KeyError:
            raise KeyError(f"no client certificate with CN {cn!r}; have {sorted(self.clients)}") from None

    def server(self, label: str) -> ServerCert:
        try:
            return self.servers[label]
        except KeyError:
            raise KeyError(f"no server certificate {label!r}; have {sorted(self.servers)}") from None


# -- low level -------------------------------------------------------------------------------


def generate_key(key_type: KeyType = "ec") -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type: must be 'ec' or 'rsa', got {key_type!r}")


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` as 0600 from the start, so a key is never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def _key_pem(key: PrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _builder(
    subject_cn: str,
    issuer: x509.Name,
    public_key: object,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _validity(days: int, expired: bool = False) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    if expired:
        return now - datetime.timedelta(days=30), now - _ONE_DAY
    return now - _ONE_DAY, now + datetime.timedelta(days=days)


def create_ca(directory: Path, name: str, *, key_type: KeyType = "ec", days: int = 30) -> CertificateAuthority:
    """Write ``<name>.pem`` (certificate) and ``<name>.key`` (0600) in ``directory``."""
    key = generate_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kmiplab {name}")])
    not_before, not_after = _validity(days)
    cert = (
        _builder(f"kmiplab {name}", subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    directory.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(_cert_pem(cert))
    write_private_file(key_path, _key_pem(key))
    return CertificateAuthority(name=name, cert=cert_path, key=key_path, certificate=cert, private_key=key)


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    # RSA key exchange needs keyEncipherment; EC (ECDHE) needs digitalSignature only
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_server_cert(
    ca: CertificateAuthority,
    directory: Path,
    label: str,
    names: Sequence[str],
    *,
    key_type: KeyType = "ec",
    days: int = 30,
) -> ServerCert:
    """A server certificate for ``names`` (IP addresses and DNS names, all put in the SAN)."""
    if not names:
        raise ValueError("names: a server certificate needs at least one IP address or DNS name")
    key = generate_key(key_type)
    not_before, not_after = _validity(days)
    cert = (
        _builder(names[0], ca.certificate.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    cert_path = directory / f"server-{label}.pem"
    key_path = directory / f"server-{label}.key"
    cert_path.write_bytes(_cert_pem(cert) + _cert_pem(ca.certificate))
    write_private_file(key_path, _key_pem(key))
    return ServerCert(cert=cert_path, key=key_path, names=tuple(names), issuer_ca=ca.cert)


def issue_client_cert(
    ca: CertificateAuthority,
    directory: Path,
    cn: str,
    *,
    file_stem: str | None = None,
    password: str | None = None,
    usage: ClientUsage = "client_auth",
    expired: bool = False,
    without_key: bool = False,
    key_type: KeyType = "ec",
    days: int = 30,
) -> ClientCert:
    """A mongod client identity: ``<stem>.pem`` = key + leaf + CA, ``<stem>.crt`` = leaf only.

    ``password`` encrypts the key in the PEM (PKCS#8, what clientCertificatePassword opens).
    ``usage``/``expired``/``without_key`` build the variants negative tests need.
    """
    if password is not None and without_key:
        raise ValueError("password: makes no sense for a PEM built without_key")
    key = generate_key(key_type)
    not_before, not_after = _validity(days, expired=expired)
    builder = (
        _builder(cn, ca.certificate.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False)
    )
    if usage == "client_auth":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    elif usage == "server_auth_only":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage != "no_eku":
        raise ValueError(f"usage: must be client_auth, server_auth_only or no_eku, got {usage!r}")
    cert = builder.sign(ca.private_key, hashes.SHA256())
    stem = file_stem or f"client-{cn}"
    pem_path = directory / f"{stem}.pem"
    cert_path = directory / f"{stem}.crt"
    chain = _cert_pem(cert) + _cert_pem(ca.certificate)
    cert_path.write_bytes(_cert_pem(cert))
    if without_key:
        pem_path.write_bytes(chain)
        pem_path.chmod(0o644)
    else:
        write_private_file(pem_path, _key_pem(key, password) + chain)
    return ClientCert(cn=cn, pem=pem_path, cert=cert_path, password=password)


# -- the standard lab ------------------------------------------------------------------------

DEFAULT_SERVERS: Mapping[str, Sequence[str]] = {
    "kmip1": ("127.0.20.1", "kmip1.test"),
    "kmip2": ("127.0.20.2", "kmip2.test"),
}
DEFAULT_CLIENTS: Sequence[str] = ("mongod1", "mongod2", "mongod3")


def build_lab_pki(
    directory: str | os.PathLike[str],
    *,
    servers: Mapping[str, Sequence[str]] = DEFAULT_SERVERS,
    clients: Sequence[str] = DEFAULT_CLIENTS,
    wrong_host_names: Sequence[str] = ("wrong.test", "192.0.2.1"),
    other_ca_server_names: Sequence[str] | None = None,
    key_type: KeyType = "ec",
) -> LabPki:
    """Create the whole lab PKI in ``directory``.

    ``servers`` maps a label to the names (IPs/DNS) of one KMIP server; ``clients`` are the
    CNs of the mongod identities. The bad server variants use ``other_ca_server_names``
    (default: the names of the first server) signed by the other CA, and
    ``wrong_host_names`` (right CA, names that are not the server's).
    """
    if not servers:
        raise ValueError("servers: at least one server is needed")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    ca = create_ca(root, "ca", key_type=key_type)
    other_ca = create_ca(root, "other-ca", key_type=key_type)
    server_certs = {
        label: issue_server_cert(ca, root, label, names, key_type=key_type) for label, names in servers.items()
    }
    client_certs = {cn: issue_client_cert(ca, root, cn, key_type=key_type) for cn in clients}
    encrypted = issue_client_cert(ca, root, "mongod-encrypted", password=secrets.token_urlsafe(18), key_type=key_type)
    other_ca_names = other_ca_server_names or next(iter(servers.values()))
    bad_dir = root / "bad"
    bad_dir.mkdir(exist_ok=True)
    bad = BadCerts(
        expired_client=issue_client_cert(ca, bad_dir, "expired", expired=True, key_type=key_type),
        no_eku_client=issue_client_cert(ca, bad_dir, "no-eku", usage="no_eku", key_type=key_type),
        server_auth_only_client=issue_client_cert(
            ca, bad_dir, "server-auth-only", usage="server_auth_only", key_type=key_type
        ),
        other_ca_client=issue_client_cert(other_ca, bad_dir, "other-ca-client", key_type=key_type),
        client_without_key=issue_client_cert(ca, bad_dir, "no-key", without_key=True, key_type=key_type),
        other_ca_server=issue_server_cert(other_ca, bad_dir, "other-ca", other_ca_names, key_type=key_type),
        wrong_host_server=issue_server_cert(ca, bad_dir, "wrong-host", wrong_host_names, key_type=key_type),
    )
    return LabPki(
        directory=root,
        ca=ca,
        other_ca=other_ca,
        servers=server_certs,
        clients=client_certs,
        encrypted_client=encrypted,
        bad=bad,
    )
