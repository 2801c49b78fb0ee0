"""TLS (requireTLS, client certificates, encrypted server key), SCRAM-SHA-256 and keyFile internal auth.

A 2-member replica set on 127.0.40.21-22: members heartbeat and replicate over TLS as __system (keyFile),
so a w:majority write proves the internal path; clients use pymongo with tls, a client certificate and
SCRAM-SHA-256 credentials.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bson.timestamp import Timestamp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pymongo import MongoClient
from pymongo.errors import NotPrimaryError, OperationFailure, ServerSelectionTimeoutError

from psmdb_emulator.server.peer import PeerClient, PeerError
from psmdb_emulator.server.testing import QUICK_SHUTDOWN, EmulatorProcess, replica_set_config, terminate_all, wait_for

HOSTS = ("127.0.40.21", "127.0.40.22")
PORT = 27017
SET_NAME = "rstls"
PEM_PASSWORD = "pem-secret-9f3"
ADMIN_PASSWORD = "admin-pass-71c"


@dataclass
class Pki:
    ca_file: Path
    server_file: Path
    client_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    ips: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if ips:
        alt_names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("emulator test CA", ca_key, _name("emulator test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue("psmdb members", ca_key, ca_cert.subject, server_key, ips=HOSTS)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue("test client", ca_key, ca_cert.subject, client_key)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "client.pem")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    # The member key is encrypted, so net.tls.certificateKeyFilePassword is needed (and must stay secret).
    encrypted = serialization.BestAvailableEncryption(PEM_PASSWORD.encode())
    pki.server_file.write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encrypted)
        + server_cert.public_bytes(serialization.Encoding.PEM)
    )
    plain = serialization.NoEncryption()
    pki.client_file.write_bytes(
        client_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, plain)
        + client_cert.public_bytes(serialization.Encoding.PEM)
    )
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[list[EmulatorProcess]]:
    base = tmp_path_factory.mktemp("tlsset")
    key_file = base / "keyfile"
    key_file.write_text("c2VjcmV0LWtleS1mb3ItaW50ZXJuYWwtYXV0aA==\n")
    key_file.chmod(0o400)
    args = [
        "--replSet", SET_NAME, "--auth", "--keyFile", str(key_file),
        "--tlsMode", "requireTLS",
        "--tlsCertificateKeyFile", str(pki.server_file),
        "--tlsCertificateKeyFilePassword", PEM_PASSWORD,
        "--tlsCAFile", str(pki.ca_file),
        *QUICK_SHUTDOWN,
    ]  # fmt: skip
    processes = []
    for index, host in enumerate(HOSTS):
        workdir = base / f"member{index}"
        workdir.mkdir()
        processes.append(EmulatorProcess(workdir, host, PORT, args))
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_listening()
        yield processes
    finally:
        terminate_all(processes)


def tls_client(pki: Pki, address: str, **kwargs: Any) -> MongoClient[dict[str, Any]]:
    return MongoClient(
        address,
        tls=True,
        tlsCAFile=str(pki.ca_file),
        tlsCertificateKeyFile=str(pki.client_file),
        serverSelectionTimeoutMS=30000,
        **kwargs,
    )


def admin_client(pki: Pki, **kwargs: Any) -> MongoClient[dict[str, Any]]:
    seeds = ",".join(f"{host}:{PORT}" for host in HOSTS)
    return tls_client(
        pki,
        f"mongodb://{seeds}/?replicaSet={SET_NAME}",
        username="admin",
        password=ADMIN_PASSWORD,
        authSource="admin",
        authMechanism="SCRAM-SHA-256",
        **kwargs,
    )


def test_plain_text_clients_are_refused(members: list[EmulatorProcess]) -> None:
    with (
        MongoClient(members[0].address, directConnection=True, serverSelectionTimeoutMS=3000) as plain,
        pytest.raises(ServerSelectionTimeoutError),
    ):
        plain.admin.command("ping")


def test_localhost_exception_then_authentication_required(pki: Pki, members: list[EmulatorProcess]) -> None:
    with tls_client(pki, members[0].address, directConnection=True) as anonymous:
        assert anonymous.admin.command("ping")["ok"] == 1.0  # allowed before authentication
        config = replica_set_config(SET_NAME, members, heartbeatIntervalMillis=1000, electionTimeoutMillis=10000)
        anonymous.admin.command({"replSetInitiate": config})  # localhost exception: no user exists yet

    def elected_primary() -> EmulatorProcess | None:
        for member in members:
            with tls_client(pki, member.address, directConnection=True) as probe:
                if probe.admin.command("hello").get("isWritablePrimary"):
                    return member
        return None

    def create_admin_on_primary() -> EmulatorProcess | None:
        # A loaded machine can make a fresh primary step down (slow heartbeats): retry on the next primary.
        primary = wait_for(elected_primary, 180, "a primary")
        with tls_client(pki, primary.address, directConnection=True) as anonymous:
            try:
                anonymous.admin.command("createUser", "admin", pwd=ADMIN_PASSWORD, roles=["root"])
            except NotPrimaryError:
                return None
        return primary

    primary = wait_for(create_admin_on_primary, 180, "the first user to be created")
    with tls_client(pki, primary.address, directConnection=True) as anonymous:
        with pytest.raises(OperationFailure) as refused:
            anonymous.admin.command("createUser", "second", pwd="x", roles=["root"])
        assert refused.value.code == 13
        with pytest.raises(OperationFailure) as unauthorized:
            anonymous.list_database_names()
        assert unauthorized.value.code == 13  # Unauthorized


def test_scram_client_writes_with_majority_over_tls(pki: Pki, members: list[EmulatorProcess]) -> None:
    with admin_client(pki, w="majority", wtimeoutMS=60000) as client:
        client.app.secure.insert_one({"_id": 1, "secret": False})
        assert client.app.secure.find_one({"_id": 1}) == {"_id": 1, "secret": False}
        status = client.admin.command("replSetGetStatus")
        assert sorted(m["stateStr"] for m in status["members"]) == ["PRIMARY", "SECONDARY"]


def test_wrong_password_fails_authentication(pki: Pki, members: list[EmulatorProcess]) -> None:
    with (
        tls_client(
            pki,
            members[0].address,
            directConnection=True,
            username="admin",
            password="not-the-password",
            authMechanism="SCRAM-SHA-256",
        ) as client,
        pytest.raises(OperationFailure) as failure,
    ):
        client.admin.command("ping")
    assert failure.value.code == 18  # AuthenticationFailed


def test_unknown_user_fails_authentication_with_the_driver_default_mechanism(
    pki: Pki, members: list[EmulatorProcess]
) -> None:
    # No authMechanism: hello lists no saslSupportedMechs for an unknown user, so pymongo falls
    # back to SCRAM-SHA-1; mongod answers AuthenticationFailed, not MechanismUnavailable.
    with (
        tls_client(pki, members[0].address, directConnection=True, username="nobody", password="x") as client,
        pytest.raises(OperationFailure) as failure,
    ):
        client.admin.command("ping")
    assert failure.value.code == 18  # AuthenticationFailed
    with tls_client(pki, members[0].address, directConnection=True) as anonymous:
        hello = anonymous.admin.command("hello", saslSupportedMechs="admin.admin")
        assert hello["saslSupportedMechs"] == ["SCRAM-SHA-256"]
        assert "saslSupportedMechs" not in anonymous.admin.command("hello", saslSupportedMechs="admin.nobody")


def test_passwords_are_masked_in_cmd_line_opts_and_never_logged(pki: Pki, members: list[EmulatorProcess]) -> None:
    with tls_client(
        pki,
        members[0].address,
        directConnection=True,  # needs no primary
        username="admin",
        password=ADMIN_PASSWORD,
        authMechanism="SCRAM-SHA-256",
    ) as client:
        options = client.admin.command("getCmdLineOpts")
    assert options["parsed"]["net"]["tls"]["certificateKeyFilePassword"] == "<password>"
    assert options["parsed"]["net"]["tls"]["mode"] == "requireTLS"
    assert PEM_PASSWORD not in repr(options)
    for member in members:
        log = member.log_text()
        assert "Waiting for connections" in log
        assert PEM_PASSWORD not in log
        assert ADMIN_PASSWORD not in log


def test_i10_9_cluster_time_is_signed_in_a_key_file_set(pki: Pki, members: list[EmulatorProcess]) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(str(pki.client_file))
    first = PeerClient(members[0].address, context, key=None)  # not authenticated: no advanceClusterTime
    second = PeerClient(members[1].address, context, key=None)
    try:
        reply = first.command("admin", {"ping": 1}, timeout=30)
        cluster_time = reply["$clusterTime"]
        assert isinstance(cluster_time["clusterTime"], Timestamp) and isinstance(reply["operationTime"], Timestamp)
        assert len(cluster_time["signature"]["hash"]) == 20 and cluster_time["signature"]["keyId"] != 0
        # Every member verifies a cluster time any member of the set signed...
        assert second.command("admin", {"ping": 1, "$clusterTime": cluster_time}, timeout=30)["ok"] == 1.0
        # ...and refuses a forged one from a client that may not advance the cluster time.
        forged = {
            "clusterTime": Timestamp(cluster_time["clusterTime"].time + 3600, 1),
            "signature": cluster_time["signature"],
        }
        with pytest.raises(PeerError) as refused:
            second.command("admin", {"ping": 1, "$clusterTime": forged}, timeout=30)
        assert refused.value.reply is not None and refused.value.reply["codeName"] == "TimeProofMismatch"
    finally:
        first.close()
        second.close()
