# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_transport: deadlines and the mapping of low-level failures to typed errors (no network)."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import transport as kmip_transport
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.transport import (
    Deadline,
    DeadlineSocket,
    Endpoint,
    classify,
    resolve_first,
)

SERVER = "kmip1.test:5696"
HANG_GUARD_S = 15.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


def test_deadline_counts_down_and_rearms() -> None:
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    clock.now += 1.5
    assert deadline.remaining() == pytest.approx(0.5)
    clock.now += 0.5
    with pytest.raises(TimeoutError):
        deadline.remaining()
    deadline.rearm()
    assert deadline.remaining() == pytest.approx(2.0)


def test_deadline_socket_times_out_on_an_unanswered_socket() -> None:
    left, right = socket.socketpair()
    try:
        sock = DeadlineSocket(left, Deadline(0.3))  # type: ignore[arg-type]
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            while True:  # a peer that never answers: each recv only gets what is left
                sock.recv(8)
        # A hang guard well below PyKMIP's 30 s default; the machine may be loaded.
        assert time.monotonic() - start < HANG_GUARD_S
    finally:
        left.close()
        right.close()


def test_deadline_socket_bounds_a_trickling_peer() -> None:
    """Each recv gets data, yet the exchange as a whole ends when the deadline passes."""
    left, right = socket.socketpair()
    clock = FakeClock()
    try:
        right.sendall(b"x" * 100)
        sock = DeadlineSocket(left, Deadline(1.0, clock=clock))  # type: ignore[arg-type]
        received = b""
        with pytest.raises(TimeoutError):
            while True:
                received += sock.recv(1)
                clock.now += 0.3  # a slow peer: every byte takes 0.3 s
        assert received == b"xxxx"
    finally:
        left.close()
        right.close()


def test_resolve_literal_address_needs_no_lookup_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "Thread", None)  # would crash if a thread were started
    info = resolve_first("127.0.20.10", 5696, Deadline(HANG_GUARD_S))
    assert info[4] == ("127.0.20.10", 5696)


def test_resolve_is_bounded_by_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging_getaddrinfo(*args: object, **kwargs: object) -> list:
        release.wait(5)
        return []

    monkeypatch.setattr(kmip_transport.socket, "getaddrinfo", hanging_getaddrinfo)
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            resolve_first("kmip.example.invalid", 5696, Deadline(0.2))
        assert time.monotonic() - start < HANG_GUARD_S
    finally:
        release.set()


def test_resolve_returns_the_first_address(monkeypatch: pytest.MonkeyPatch) -> None:
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.20.11", 5696)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.20.12", 5696)),
    ]
    monkeypatch.setattr(kmip_transport.socket, "getaddrinfo", lambda *a, **k: infos)
    assert resolve_first("kmip.test", 5696, Deadline(HANG_GUARD_S))[4] == ("127.0.20.11", 5696)


@pytest.mark.parametrize(
    ("exc", "phase", "error_class", "fragment"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "resolve", errors.KmipDnsError, "resolution"),
        (ConnectionRefusedError(111, "refused"), "tcp", errors.KmipConnectionRefusedError, "refused"),
        (TimeoutError(), "tls", errors.KmipTimeoutError, "during the TLS handshake"),
        (TimeoutError(), "exchange", errors.KmipTimeoutError, "first KMIP exchange"),
        (ssl_error("SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"), "tls", errors.KmipTlsRejectedError, "clientAuth"),
        (ssl_error("SSLV3_ALERT_CERTIFICATE_EXPIRED"), "tls", errors.KmipTlsRejectedError, "expired"),
        (ssl_error("TLSV1_ALERT_UNKNOWN_CA"), "tls", errors.KmipTlsRejectedError, "does not trust"),
        (ssl_error("WRONG_VERSION_NUMBER"), "tls", errors.KmipNotKmipServerError, "not TLS"),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "tls", errors.KmipNotKmipServerError, "closed"),
        (ConnectionResetError(104, "reset"), "exchange", errors.KmipTlsRejectedError, "without a KMIP answer"),
        (EOFError("No data read from socket"), "exchange", errors.KmipTlsRejectedError, "without a KMIP answer"),
        (OSError(113, "No route to host"), "tcp", errors.KmipNetworkError, "No route to host"),
    ],
)
def test_classify_low_level_failures(exc: BaseException, phase: str, error_class: type, fragment: str) -> None:
    error = classify(exc, SERVER, phase, 5000)
    assert type(error) is error_class  # pylint: disable=unidiomatic-typecheck
    assert SERVER in str(error)
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("code", "reason", "advice"),
    [
        (20, "unknown_ca", "server_ca_file"),
        (19, "unknown_ca", "server_ca_file"),
        (62, "hostname_mismatch", "subjectAltName"),
        (64, "hostname_mismatch", "subjectAltName"),
        (10, "expired", "Renew"),
        (9, "not_yet_valid", "clocks"),
    ],
)
def test_classify_verification_failures_name_the_cause(code: int, reason: str, advice: str) -> None:
    error = classify(verify_error(code, "some openssl text"), SERVER, "tls", 5000)
    assert isinstance(error, errors.KmipTlsVerifyError)
    assert error.reason == reason
    assert advice in str(error)
    assert error.details() == {"server": SERVER, "tls_reason": reason}


def test_endpoint_label_brackets_ipv6() -> None:
    assert Endpoint("::1", 5696).label == "[::1]:5696"
    assert Endpoint("kmip1.test", 5696).label == "kmip1.test:5696"


def _plain_tcp_service(behaviour: str) -> int:
    """One connection to a plain (not TLS) TCP service on loopback that answers as ``behaviour``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, listener:
            data = connection.recv(4096)
            connection.sendall(data if behaviour == "echo" else b"SSH-2.0-OpenSSH_9.2\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


@pytest.mark.parametrize("behaviour", ["echo", "banner"])
def test_a_plain_tcp_service_is_not_a_kmip_server_and_the_certificate_is_not_blamed(behaviour: str) -> None:
    port = _plain_tcp_service(behaviour)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with pytest.raises(ssl.SSLError) as caught:
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    raw.close()
    error = classify(caught.value, SERVER, "tls", 5000)
    assert error.kind == "not_kmip", str(error)
    assert "client_certificate_file" not in str(error)


def test_an_unknown_tls_failure_in_the_handshake_does_not_blame_the_client_certificate() -> None:
    error = classify(ssl_error("SOMETHING_NEW"), SERVER, "tls", 5000)
    assert "client_certificate_file" not in str(error) and "port" in str(error)
