# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KmipClient: mongod's failover order, retries, option checks before any connection, timeouts."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KmipClient, KmipSession
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import KmipSettings
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.transport import (
    ConnectInfo,
    Deadline,
    DeadlineSocket,
    Endpoint,
)
from kmiplab.pki import LabPki


def settings(pki: LabPki, **overrides: Any) -> KmipSettings:
    values: dict[str, Any] = {
        "server_name": ["a.test", "b.test", "c.test"],
        "server_ca_file": str(pki.ca.cert),
        "client_certificate_file": str(pki.client("mongod1").pem),
        "connect_timeout_ms": 1000,
    }
    values.update(overrides)
    return KmipSettings(**values)


class FakeSocket:
    """Stands for a connected TLS socket; sessions on it are never used for I/O here."""

    def __init__(self) -> None:
        self.deadline = Deadline(1.0)
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def shutdown(self, how: int) -> None:
        pass


class Connector:
    """Scripted outcomes per host, in call order."""

    def __init__(self, outcomes: dict[str, list[Any]]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []
        self.sockets: list[FakeSocket] = []

    def __call__(self, endpoint: Endpoint, context: Any, deadline: Deadline, info: ConnectInfo) -> Any:
        self.calls.append(endpoint.host)
        outcome = self.outcomes[endpoint.host].pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        sock = FakeSocket()
        self.sockets.append(sock)
        return sock


def client_with(pki: LabPki, connector: Connector, **overrides: Any) -> KmipClient:
    client = KmipClient(settings(pki, **overrides), connector=connector)
    client._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # skip loading the system CA store
    return client


def refused() -> ConnectionRefusedError:
    return ConnectionRefusedError(111, "Connection refused")


def test_servers_are_tried_in_order_over_all_passes(pki: LabPki) -> None:
    connector = Connector({h: [refused()] * 3 for h in ("a.test", "b.test", "c.test")})
    client = client_with(pki, connector, connect_retries=2)
    with pytest.raises(errors.KmipAllServersFailedError) as caught:
        client.session(lambda s: None)
    assert connector.calls == ["a.test", "b.test", "c.test"] * 3
    assert caught.value.passes == 3
    assert [a["error_kind"] for a in caught.value.details()["attempts"]] == ["connection_refused"] * 9
    # the same failure is said once per server, not once per pass
    assert str(caught.value).count("a.test:5696") == 1


def test_first_working_server_is_selected(pki: LabPki) -> None:
    connector = Connector({"a.test": [refused()], "b.test": ["ok"], "c.test": ["ok"]})
    client = client_with(pki, connector)
    session, value = client.session(lambda s: s.server)
    assert value == "b.test:5696"
    assert connector.calls == ["a.test", "b.test"]
    assert isinstance(session, KmipSession)


def test_a_later_pass_can_succeed(pki: LabPki) -> None:
    connector = Connector({"a.test": [refused(), "ok"], "b.test": [refused()]})
    client = client_with(pki, connector, server_name=["a.test", "b.test"], connect_retries=1)
    session, _value = client.session(lambda s: None)
    assert session.server == "a.test:5696"
    assert connector.calls == ["a.test", "b.test", "a.test"]


def test_failure_of_the_first_exchange_moves_on_and_closes(pki: LabPki) -> None:
    connector = Connector({"a.test": ["ok"], "b.test": ["ok"], "c.test": ["ok"]})
    client = client_with(pki, connector)

    def first(session: KmipSession) -> str:
        if session.endpoint.host == "a.test":
            raise errors.KmipTimeoutError(session.server, "no answer")
        return session.server

    _session, value = client.session(first)
    assert value == "b.test:5696"
    assert connector.sockets[0].closed
    assert not connector.sockets[1].closed


def test_a_kmip_error_status_is_an_answer_not_a_reason_to_fail_over(pki: LabPki) -> None:
    connector = Connector({"a.test": ["ok"], "b.test": ["ok"], "c.test": ["ok"]})
    client = client_with(pki, connector)

    def first(session: KmipSession) -> None:
        raise errors.KmipPermissionDeniedError(session.server, "Get Attributes", "Permission Denied")

    with pytest.raises(errors.KmipPermissionDeniedError) as caught:
        client.session(first)
    assert connector.calls == ["a.test"]
    assert connector.sockets[0].closed
    assert "delegate" not in str(caught.value) or "mongod" in str(caught.value)
    assert "own client certificate" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "option"),
    [
        ({"connect_timeout_ms": 999}, "connect_timeout_ms"),
        ({"connect_retries": -1}, "connect_retries"),
        ({"port": 65536}, "port"),
        ({"port": -1}, "port"),
        ({"server_name": [""]}, "server_name"),
        ({"server_name": ["a.test", " b.test"]}, "server_name"),
        ({"server_name": []}, "server_name"),
        ({"server_ca_file": "/nonexistent/ca.pem"}, "server_ca_file"),
        ({"client_certificate_file": None}, "client_certificate_file"),
    ],
)
def test_bad_options_fail_before_any_connection(pki: LabPki, overrides: dict[str, Any], option: str) -> None:
    connector = Connector({})
    with pytest.raises(errors.InvalidOptionError) as caught:
        client_with(pki, connector, **overrides).session(lambda s: None)
    assert caught.value.option == option
    assert connector.calls == []


def test_pem_problems_name_the_option(pki: LabPki) -> None:
    with pytest.raises(errors.InvalidOptionError) as caught:
        KmipClient(settings(pki, client_certificate_file=str(pki.bad.client_without_key.pem)))
    assert caught.value.option == "client_certificate_file"
    assert "no PEM private key" in str(caught.value)
    encrypted = pki.encrypted_client
    with pytest.raises(errors.InvalidOptionError) as caught:
        KmipClient(
            settings(pki, client_certificate_file=str(encrypted.pem), client_certificate_password="not-the-password")
        )
    assert caught.value.option == "client_certificate_password"
    assert "not-the-password" not in str(caught.value)
    assert encrypted.password not in str(caught.value)


def test_bad_kmip_version(pki: LabPki) -> None:
    with pytest.raises(errors.InvalidOptionError) as caught:
        KmipClient(settings(pki), kmip_version="3.0")
    assert caught.value.option == "kmip_version"


def test_encrypted_key_opens_with_its_password(pki: LabPki) -> None:
    encrypted = pki.encrypted_client
    client = KmipClient(
        settings(pki, client_certificate_file=str(encrypted.pem), client_certificate_password=encrypted.password)
    )
    assert client.identity.key_encrypted
    assert isinstance(client.context, ssl.SSLContext)  # OpenSSL accepts key + password too


def test_timeout_is_enforced_on_a_silent_listener(pki: LabPki) -> None:
    """A TCP server that accepts and never answers: the attempt ends after connect_timeout_ms."""
    listener = socket.socket()
    listener.bind(("127.0.20.10", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        client = KmipClient(settings(pki, server_name=["127.0.20.10"], port=port, connect_timeout_ms=1000))
        client._context = ssl.create_default_context(cafile=str(pki.ca.cert))
        start = time.monotonic()
        with pytest.raises(errors.KmipAllServersFailedError) as caught:
            client.session(lambda s: None)
        elapsed = time.monotonic() - start
        assert caught.value.errors[0].kind == "timeout"
        assert "TLS handshake" in str(caught.value)
        # well below PyKMIP's 30 s default even on a loaded machine
        assert elapsed < 15.0
    finally:
        listener.close()


def test_session_maps_operation_failures(pki: LabPki) -> None:
    from kmip.core import enums
    from kmip.pie import exceptions as pie_exceptions

    sock = FakeSocket()
    session = KmipSession(Endpoint("a.test", 5696), sock, "1.0", 1000, ConnectInfo())  # type: ignore[arg-type]

    def failing(reason: Any) -> Any:
        def run() -> None:
            raise pie_exceptions.KmipOperationFailure(enums.ResultStatus.OPERATION_FAILED, reason, "details")

        return run

    with pytest.raises(errors.KmipItemNotFoundError):
        session.call("Get", failing(enums.ResultReason.ITEM_NOT_FOUND))
    with pytest.raises(errors.KmipPermissionDeniedError):
        session.call("Get", failing(enums.ResultReason.PERMISSION_DENIED))
    with pytest.raises(errors.KmipOperationError) as caught:
        session.call("Register", failing(enums.ResultReason.INVALID_FIELD))
    assert "Register returned Invalid Field (details)" in str(caught.value)

    def timeout() -> None:
        raise TimeoutError("timed out")

    with pytest.raises(errors.KmipTimeoutError):
        session.call("Get", timeout)

    def garbled() -> None:
        raise ValueError("Invalid length used to read Base")

    with pytest.raises(errors.KmipProtocolError):
        session.call("Query", garbled)
    assert session.operations == ["Get", "Get", "Register", "Get", "Query"]


def test_later_exchanges_rearm_the_timer(pki: LabPki) -> None:
    sock = FakeSocket()
    session = KmipSession(Endpoint("a.test", 5696), sock, "1.0", 1000, ConnectInfo())  # type: ignore[arg-type]
    rearmed: list[bool] = []
    sock.deadline.rearm = lambda seconds=None: rearmed.append(True)  # type: ignore[method-assign]
    session.call("Query", lambda: None)
    assert rearmed == []  # the first exchange shares the connect timer
    session.call("Get", lambda: None)
    assert rearmed == [True]
    assert isinstance(sock, FakeSocket) and not isinstance(sock, DeadlineSocket)


def ca_first(pki: LabPki, directory: Path) -> Path:
    """mongod1's PEM with its blocks reordered: CA certificate, client certificate, key."""
    text = pki.client("mongod1").pem.read_text()
    blocks = [block + "-----\n" for block in text.split("-----\n") if block.strip()]
    blocks = ["".join(blocks[i : i + 2]) for i in range(0, len(blocks), 2)]  # BEGIN...END pairs
    key, leaf, ca = blocks
    path = directory / "ca-first.pem"
    path.write_text(ca + leaf + key)
    return path


def test_a_pem_with_the_ca_first_is_refused_as_openssl_would(pki: LabPki, tmp_path: Path) -> None:
    """OpenSSL (so mongod) takes the first certificate as the client's: a CA first does not match the key."""
    with pytest.raises(errors.InvalidOptionError) as caught:
        KmipClient(settings(pki, client_certificate_file=str(ca_first(pki, tmp_path))))
    assert caught.value.option == "client_certificate_file"
    assert "first certificate" in str(caught.value)
