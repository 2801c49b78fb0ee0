# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small PKI for the mongod_kmip_config tests: a CA and a client PEM (key + certificate).

EC P-256 keys: generated in milliseconds, and accepted by mongod/OpenSSL like RSA keys.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass
class Pki:
    ca_file: Path
    client_pem: Path
    client_pem_encrypted: Path
    password: str
    key_only_pem: Path
    cert_only_pem: Path
    mismatched_pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey, password: str | None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


def make_pki(directory: Path, password: str = "Pem-Pass:w0rd#1") -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("kmipops test CA", ca_key, "kmipops test CA", ca_key, ca=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _certificate("mongod-test", client_key, "kmipops test CA", ca_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    cert_pem = client_cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    return Pki(
        ca_file=_write(directory / "ca.pem", ca_pem),
        client_pem=_write(directory / "client.pem", _key_pem(client_key, None) + cert_pem + ca_pem),
        client_pem_encrypted=_write(directory / "client-enc.pem", cert_pem + _key_pem(client_key, password)),
        password=password,
        key_only_pem=_write(directory / "key-only.pem", _key_pem(client_key, None)),
        cert_only_pem=_write(directory / "cert-only.pem", cert_pem),
        mismatched_pem=_write(directory / "mismatched.pem", _key_pem(other_key, None) + cert_pem),
    )
