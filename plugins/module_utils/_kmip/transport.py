# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Opening one TLS connection to one KMIP server the way mongod does.

mongod arms one timer of connectTimeoutMS that covers name resolution, TCP connect, TLS
handshake and the first request/response, and re-arms it for every later exchange. PyKMIP's
own socket setup has a fixed 30 s timeout and checks neither the host name nor encrypted
keys, so the socket is built here and handed to PyKMIP's protocol layer already connected.
Low-level exceptions are turned into the typed errors of ``_common.errors`` by ``classify``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    KmipConnectionError,
    KmipConnectionRefusedError,
    KmipDnsError,
    KmipNetworkError,
    KmipNotKmipServerError,
    KmipTimeoutError,
    KmipTlsRejectedError,
    KmipTlsVerifyError,
)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Deadline:
    """A point in time after which the current attempt has failed."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self._end = clock() + seconds

    def rearm(self, seconds: float | None = None) -> None:
        if seconds is not None:
            self.seconds = seconds
        self._end = self._clock() + self.seconds

    def remaining(self) -> float:
        """Seconds left; raises ``TimeoutError`` once the deadline has passed."""
        left = self._end - self._clock()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


class DeadlineSocket:
    """The socket PyKMIP's ``KMIPProtocol`` reads and writes, bounded by a ``Deadline``.

    A socket timeout alone bounds each ``recv`` call; a server that trickles bytes could
    then hold an exchange for much longer than connect_timeout_ms. Each call here gets
    only what is left of the deadline.
    """

    def __init__(self, sock: ssl.SSLSocket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(self.deadline.remaining())
        self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        self.sock.settimeout(self.deadline.remaining())
        return self.sock.recv(size)

    def shutdown(self, how: int) -> None:
        # PyKMIP's KMIPProxy.close() calls this; close() below does the orderly TLS shutdown.
        pass

    def close(self) -> None:
        try:
            self.sock.settimeout(0.5)
            self.sock.unwrap()
        except (OSError, ValueError):
            pass  # the peer may have gone already; closing is all that matters
        finally:
            self.sock.close()


@dataclasses.dataclass
class TlsSettings:
    """The TLS side of mongod's security.kmip options."""

    server_ca_file: str | None
    client_certificate_file: str
    client_certificate_password: str | None = dataclasses.field(default=None, repr=False)

    def build_context(self) -> ssl.SSLContext:
        """TLS 1.2+, chain and host name always verified, mongod's client identity loaded."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        # mongod loads the system CA store as well as serverCAFile.
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.server_ca_file:
            context.load_verify_locations(cafile=self.server_ca_file)
        password = self.client_certificate_password
        # Always a password (empty when none): OpenSSL must never prompt on a terminal for it.
        context.load_cert_chain(self.client_certificate_file, password=(password or "").encode())
        return context


@dataclasses.dataclass
class ConnectInfo:
    """What happened while connecting, for kmip_server_info."""

    address: str | None = None
    resolve_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None
    tls_version: str | None = None
    cipher: str | None = None
    peer_certificate_der: bytes | None = dataclasses.field(default=None, repr=False)
    phase: str = "resolve"


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def resolve_first(host: str, port: int, deadline: Deadline) -> tuple[Any, ...]:
    """The first address of ``host`` (mongod connects to the first one only), within the deadline.

    ``getaddrinfo`` cannot be interrupted, so it runs in a daemon thread that is abandoned
    when the deadline passes.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal address needs no lookup, and no thread
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0]
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name=f"resolve-{host}", daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        raise TimeoutError("name resolution did not finish")
    if "error" in outcome:
        raise outcome["error"]
    infos = outcome.get("infos") or []
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return infos[0]


def open_tls(
    endpoint: Endpoint, context: ssl.SSLContext, deadline: Deadline, info: ConnectInfo | None = None
) -> DeadlineSocket:
    """Resolve, connect and handshake within ``deadline``; raises low-level exceptions."""
    info = info if info is not None else ConnectInfo()
    start = time.monotonic()
    info.phase = "resolve"
    family, socktype, proto, _canonname, sockaddr = resolve_first(endpoint.host, endpoint.port, deadline)
    info.resolve_ms = _ms(start)
    info.address = sockaddr[0]
    raw = socket.socket(family, socktype, proto)
    try:
        info.phase = "tcp"
        start = time.monotonic()
        raw.settimeout(deadline.remaining())
        raw.connect(sockaddr)
        info.tcp_ms = _ms(start)
        info.phase = "tls"
        start = time.monotonic()
        raw.settimeout(deadline.remaining())
        # server_hostname drives both SNI (not sent for IP addresses) and the host name check.
        tls = context.wrap_socket(raw, server_hostname=endpoint.host)
    except BaseException:
        raw.close()
        raise
    info.tls_ms = _ms(start)
    info.tls_version = tls.version()
    cipher = tls.cipher()
    info.cipher = cipher[0] if cipher else None
    info.peer_certificate_der = tls.getpeercert(binary_form=True)
    info.phase = "exchange"
    return DeadlineSocket(tls, deadline)


# -- classification ----------------------------------------------------------------------

_VERIFY_CODES: dict[int, tuple[str, str]] = {
    2: ("unknown_ca", "unable to get issuer certificate"),
    18: ("unknown_ca", "the server certificate is self-signed"),
    19: ("unknown_ca", "self-signed certificate in the server's chain"),
    20: ("unknown_ca", "the server certificate is not signed by a CA in server_ca_file or the system store"),
    21: ("unknown_ca", "unable to verify the first certificate"),
    9: ("not_yet_valid", "the server certificate is not yet valid"),
    10: ("expired", "the server certificate has expired"),
    62: ("hostname_mismatch", "the server certificate does not match the host name in server_name"),
    64: ("hostname_mismatch", "the server certificate does not match the IP address in server_name"),
}

_VERIFY_ADVICE = {
    "unknown_ca": "Set server_ca_file to the CA (chain) that signed the KMIP server's certificate",
    "not_yet_valid": "Check the clocks of this host and of the CA",
    "expired": "Renew the KMIP server's certificate",
    "hostname_mismatch": (
        "Use a server_name that is in the certificate's subjectAltName (mongod checks it), or reissue the "
        "server certificate with this name"
    ),
    "other": "Check the server certificate and server_ca_file",
}

# OpenSSL reasons of alerts a server sends when it refuses this client's certificate.
_REJECT_REASONS: dict[str, str] = {
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": (
        "it does not accept the client certificate (unsupported certificate: usually extendedKeyUsage "
        "clientAuth is missing)"
    ),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "it says the client certificate has expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "it says the client certificate is revoked",
    "TLSV1_ALERT_UNKNOWN_CA": "it does not trust the CA that signed the client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "it refused the client certificate (bad certificate)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "it refused the client certificate (certificate unknown)",
    "TLSV1_ALERT_DECRYPT_ERROR": "it could not verify the client certificate's signature",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "it requires a client certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no common cipher or it refused the client certificate (handshake failure)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no common TLS version (TLS 1.2 or later is required)",
    "TLSV1_ALERT_ACCESS_DENIED": "it denied access to this client",
}

# OpenSSL reasons when the bytes that came back are not a TLS server's answer: a plain TCP service
# (a banner, an HTTP or mongod reply, our own ClientHello echoed back...).
_NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "UNEXPECTED_MESSAGE",
    "UNEXPECTED_RECORD",
    "BAD_RECORD_TYPE",
    "UNKNOWN_PROTOCOL",
    "RECORD_LENGTH_MISMATCH",
    "LENGTH_MISMATCH",
    "BAD_PACKET_LENGTH",
    "WRONG_SSL_VERSION",
    "UNSUPPORTED_PROTOCOL",
)

_CLIENT_ADVICE = (
    "Check client_certificate_file: it must be signed by a CA the KMIP server trusts, be valid, and have "
    "extendedKeyUsage clientAuth"
)


def classify(exc: BaseException, server: str, phase: str, timeout_ms: int) -> KmipConnectionError:
    """The typed error for an exception raised while opening or using a session."""
    if isinstance(exc, KmipConnectionError):
        return exc
    if isinstance(exc, socket.gaierror):
        return KmipDnsError(server, exc.strerror or str(exc))
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return KmipTimeoutError(server, f"no answer within connect_timeout_ms={timeout_ms} (during {_PHASES[phase]})")
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = getattr(exc, "verify_message", None) or str(exc)
        reason, text = _VERIFY_CODES.get(getattr(exc, "verify_code", 0), ("other", message))
        return KmipTlsVerifyError(server, f"{text} ({message})", _VERIFY_ADVICE[reason], reason)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        if reason in _REJECT_REASONS:
            return KmipTlsRejectedError(server, _REJECT_REASONS[reason], _CLIENT_ADVICE)
        if reason in _NOT_TLS_REASONS:
            return KmipNotKmipServerError(server, f"the answer is not TLS ({reason.lower()})")
        if isinstance(exc, ssl.SSLEOFError) or "EOF" in reason:
            return _closed(server, phase)
        if phase == "tls":
            # no alert about the client certificate: do not blame it
            return KmipTlsRejectedError(
                server,
                f"TLS handshake failed ({(reason or type(exc).__name__).lower()})",
                "Check that port is the KMIP (TLS) port of the server, and the TLS settings of both sides",
            )
        return KmipTlsRejectedError(server, f"TLS error {reason or exc}", _CLIENT_ADVICE)
    if isinstance(exc, ConnectionRefusedError):
        return KmipConnectionRefusedError(server, "nothing listens on this address and port")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError)):
        return _closed(server, phase)
    if isinstance(exc, OSError):
        return KmipNetworkError(server, exc.strerror or str(exc))
    return KmipNetworkError(server, f"{type(exc).__name__}: {exc}")


_PHASES = {
    "resolve": "name resolution",
    "tcp": "TCP connect",
    "tls": "the TLS handshake",
    "exchange": "the first KMIP exchange",
    "operation": "a KMIP exchange",
}


def _closed(server: str, phase: str) -> KmipConnectionError:
    if phase == "tls":
        return KmipNotKmipServerError(
            server,
            "the peer closed the connection during the TLS handshake (not a TLS server, or it dropped this client)",
        )
    return KmipTlsRejectedError(
        server,
        "the server closed the connection without a KMIP answer (it may have refused the client certificate)",
        _CLIENT_ADVICE,
    )
