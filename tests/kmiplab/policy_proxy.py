# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A least-privilege KMS for tests: a KMIP-aware TLS proxy in front of a real PyKMIP server.

PyKMIP grants operations per object (operation policies), never per client identity, so it
cannot play a KMS whose role allows only some operations, like a HashiCorp Vault KMIP role
with ``operation_register, operation_activate, operation_get, operation_get_attributes``.
This proxy can:

- it terminates TLS with a lab server certificate and requires a client certificate signed by
  the lab CA (as a KMS does);
- it reads each request message whole (TTLV framing) and decodes it with PyKMIP's own
  message classes (``RequestMessage``), so the operation is the one a KMIP server would see;
- a request whose every batch item is allowed is forwarded byte for byte to the PyKMIP server,
  over TLS, presenting the lab identity with the same CN as the client (so PyKMIP's ownership
  rules still apply), and the answer is passed back unchanged;
- any other request is answered by the proxy itself: Operation Failed with ``denial_reason``
  (Permission Denied by default) for each batch item, in the request's protocol version,
  built and encoded with PyKMIP's ``ResponseMessage``; nothing reaches the server. With
  ``close_on_denial`` it ends the session instead, as some servers do;
- a request it cannot decode is answered Invalid Message, as PyKMIP itself answers one.

Every request is recorded (operation, allowed or not, client CN), which also makes the proxy
an exact request counter (the PyKMIP log misses requests refused before "Processing operation").
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping

from kmip.core import enums
from kmip.core.messages import contents, messages
from kmip.core.utils import BytearrayStream

from kmiplab.pki import ClientCert, ServerCert
from kmiplab.ports import _Listener
from kmiplab.server import PyKmipServer

__all__ = [
    "KEY_MANAGEMENT_OPERATIONS",
    "POLICIES",
    "PSMDB_OPERATIONS",
    "KmipPolicyProxy",
    "ProxiedRequest",
]

#: What PSMDB sends (psmdb-kmip.md section 2): a Vault role with exactly these grants.
PSMDB_OPERATIONS: frozenset[enums.Operation] = frozenset(
    {enums.Operation.REGISTER, enums.Operation.ACTIVATE, enums.Operation.GET, enums.Operation.GET_ATTRIBUTES}
)
#: PSMDB plus what kmip_key and kmip_key_info add (find by Name, retire, destroy).
KEY_MANAGEMENT_OPERATIONS: frozenset[enums.Operation] = PSMDB_OPERATIONS | {
    enums.Operation.LOCATE,
    enums.Operation.REVOKE,
    enums.Operation.DESTROY,
}
#: Named policies; ``None`` lets everything through (the proxy then only counts).
POLICIES: Mapping[str, frozenset[enums.Operation] | None] = {
    "psmdb": PSMDB_OPERATIONS,
    "psmdb+key-management": KEY_MANAGEMENT_OPERATIONS,
    "all": None,
}

_TTLV_HEADER = 8


@dataclasses.dataclass(frozen=True)
class ProxiedRequest:
    #: operation names as KMIP spells them ("Get Attributes"); "(undecodable)" when not decoded
    operations: tuple[str, ...]
    allowed: bool
    client: str | None


def operation_title(operation: enums.Operation) -> str:
    return " ".join(part.capitalize() for part in operation.name.split("_"))


def _recv_exactly(sock: ssl.SSLSocket, size: int) -> bytes | None:
    """``size`` bytes, or None when the peer closed the connection before sending any."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            if chunks:
                raise ConnectionError("the peer closed the connection in the middle of a message")
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(sock: ssl.SSLSocket) -> bytes | None:
    """One whole TTLV message (header and value), or None at end of stream."""
    header = _recv_exactly(sock, _TTLV_HEADER)
    if header is None:
        return None
    body = _recv_exactly(sock, int.from_bytes(header[4:8], "big"))
    if body is None:
        raise ConnectionError("the peer closed the connection after a message header")
    return header + body


def decode_request(data: bytes) -> messages.RequestMessage:
    request = messages.RequestMessage()
    request.read(BytearrayStream(data))
    return request


def _encode(response: messages.ResponseMessage, version: enums.KMIPVersion) -> bytes:
    stream = BytearrayStream()
    response.write(stream, kmip_version=version)
    return bytes(stream.buffer)


def denial_response(request: messages.RequestMessage, reason: enums.ResultReason, message: str) -> bytes:
    """Operation Failed for every batch item of ``request``, as a KMS answers a forbidden operation."""
    protocol_version = request.request_header.protocol_version
    items = [
        messages.ResponseBatchItem(
            operation=contents.Operation(item.operation.value),
            unique_batch_item_id=item.unique_batch_item_id,
            result_status=contents.ResultStatus(enums.ResultStatus.OPERATION_FAILED),
            result_reason=contents.ResultReason(reason),
            result_message=contents.ResultMessage(message),
        )
        for item in request.batch_items
    ]
    header = messages.ResponseHeader(
        protocol_version=protocol_version,
        time_stamp=contents.TimeStamp(int(time.time())),
        batch_count=contents.BatchCount(len(items)),
    )
    version = contents.protocol_version_to_kmip_version(protocol_version) or enums.KMIPVersion.KMIP_1_0
    return _encode(messages.ResponseMessage(response_header=header, batch_items=items), version)


def invalid_message_response() -> bytes:
    """PyKMIP's own answer to a request it cannot parse (KMIP 1.0, no operation)."""
    item = messages.ResponseBatchItem(
        result_status=contents.ResultStatus(enums.ResultStatus.OPERATION_FAILED),
        result_reason=contents.ResultReason(enums.ResultReason.INVALID_MESSAGE),
        result_message=contents.ResultMessage("the kmiplab policy proxy could not parse the request message"),
    )
    header = messages.ResponseHeader(
        protocol_version=contents.ProtocolVersion(1, 0),
        time_stamp=contents.TimeStamp(int(time.time())),
        batch_count=contents.BatchCount(1),
    )
    return _encode(messages.ResponseMessage(response_header=header, batch_items=[item]), enums.KMIPVersion.KMIP_1_0)


def _peer_common_name(sock: ssl.SSLSocket) -> str | None:
    for rdn in (sock.getpeercert() or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class KmipPolicyProxy(_Listener):
    """A KMS on ``address:port`` that allows only ``allowed`` and forwards that to ``upstream``.

    ``server_cert`` must name ``address`` (the client checks the host name); ``identities`` are
    the lab client identities the proxy may present upstream, looked up by the client's CN.
    ``allowed=None`` allows everything. Has the attributes ``kmip_options``/``lab_client`` read
    from a server: ``address``, ``port``, ``endpoint``, ``server_cert``.
    """

    def __init__(
        self,
        address: str,
        port: int,
        *,
        upstream: PyKmipServer,
        server_cert: ServerCert,
        ca_file: str | os.PathLike[str],
        identities: Iterable[ClientCert],
        allowed: Iterable[enums.Operation] | None = PSMDB_OPERATIONS,
        denial_reason: enums.ResultReason = enums.ResultReason.PERMISSION_DENIED,
        close_on_denial: bool = False,
        timeout: float = 120.0,
    ) -> None:
        self.upstream = upstream
        self.server_cert = server_cert
        self.allowed: frozenset[enums.Operation] | None = None if allowed is None else frozenset(allowed)
        self.denial_reason = denial_reason
        self.close_on_denial = close_on_denial
        self.timeout = timeout
        self.identities = {identity.cn: identity for identity in identities}
        self._requests: list[ProxiedRequest] = []
        self._server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server_context.load_cert_chain(str(server_cert.cert), str(server_cert.key))
        self._server_context.verify_mode = ssl.CERT_REQUIRED
        self._server_context.load_verify_locations(cafile=str(ca_file))
        self._upstream_contexts: dict[str, ssl.SSLContext] = {}
        super().__init__(address, port)

    def __enter__(self) -> KmipPolicyProxy:
        return self

    # -- observation ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._requests)

    def mark(self) -> int:
        """Number of requests so far, to look only at later ones (``since=``)."""
        with self._lock:
            return len(self._requests)

    def operations(self, since: int = 0, *, allowed: bool | None = None) -> list[str]:
        """Operations requested after ``since``, in order; only the allowed (or denied) ones if asked."""
        return [
            name
            for request in self.requests[since:]
            if allowed is None or request.allowed is allowed
            for name in request.operations
        ]

    # -- serving --------------------------------------------------------------------------------

    def _handle(self, connection: socket.socket) -> None:
        with self._lock:
            self._held.append(connection)
        threading.Thread(target=self._serve_connection, args=(connection,), daemon=True).start()

    def _serve_connection(self, raw: socket.socket) -> None:
        raw.settimeout(self.timeout)
        upstream: ssl.SSLSocket | None = None
        try:
            downstream = self._server_context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self._lock:
            self._held.append(downstream)
        client = _peer_common_name(downstream)
        try:
            while (data := read_message(downstream)) is not None:
                try:
                    request = decode_request(data)
                except Exception:  # PyKMIP raises many types for a malformed message
                    self._record(ProxiedRequest(("(undecodable)",), False, client))
                    downstream.sendall(invalid_message_response())
                    continue
                operations = [item.operation.value for item in request.batch_items]
                allowed = self.allowed is None or all(op in self.allowed for op in operations)
                self._record(ProxiedRequest(tuple(operation_title(op) for op in operations), allowed, client))
                if not allowed and self.close_on_denial:
                    break
                if not allowed:
                    denied = ", ".join(operation_title(op) for op in operations)
                    downstream.sendall(
                        denial_response(request, self.denial_reason, f"DENIED: {denied} is not granted to {client}")
                    )
                    continue
                if upstream is None:
                    upstream = self._connect_upstream(client)
                upstream.sendall(data)
                answer = read_message(upstream)
                if answer is None:
                    break
                downstream.sendall(answer)
        except (OSError, ssl.SSLError, ConnectionError, LookupError):
            pass
        finally:
            for sock in (upstream, downstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _connect_upstream(self, client: str | None) -> ssl.SSLSocket:
        """A TLS session with the PyKMIP server as the lab identity named ``client``."""
        identity = self.identities.get(client or "")
        if identity is None:
            raise LookupError(f"no lab identity with CN {client!r} to present upstream")
        context = self._upstream_contexts.get(identity.cn)
        if context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(cafile=str(self.upstream.server_cert.issuer_ca))
            context.load_cert_chain(str(identity.pem), password=identity.password)
            self._upstream_contexts[identity.cn] = context
        raw = socket.create_connection((self.upstream.address, self.upstream.port), timeout=self.timeout)
        try:
            upstream = context.wrap_socket(raw, server_hostname=self.upstream.server_cert.names[0])
        except BaseException:
            raw.close()
            raise
        with self._lock:
            self._held.append(upstream)
        return upstream
