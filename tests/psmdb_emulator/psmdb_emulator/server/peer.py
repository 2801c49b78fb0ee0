"""A small blocking client for member-to-member traffic: same wire protocol, TLS and keyFile auth as clients use.

A hand-rolled client rather than pymongo: every call has an exact deadline and no background monitor
threads, which matters on a small shared machine running several members.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from typing import Any

import bson
from bson.binary import Binary

from .scram import MECHANISM, ScramClientConversation
from .wire import CODEC_OPTIONS, OP_MSG

INTERNAL_USER = "__system"
INTERNAL_DB = "local"
_HEADER = struct.Struct("<iiii")


class PeerError(Exception):
    """The member could not be reached, or answered ok: 0."""

    def __init__(self, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply = reply


def split_host(host: str) -> tuple[str, int]:
    name, _, port = host.rpartition(":")
    return (name, int(port)) if name else (host, 27017)


class PeerClient:
    """One connection to one member, reopened on demand; calls are serialised."""

    def __init__(self, host: str, tls_context: ssl.SSLContext | None, key: str | None) -> None:
        self.host = host
        self._tls_context = tls_context
        self._key = key
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._request_id = 0

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def command(self, db: str, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Runs a command; raises PeerError on network failure or ok: 0."""
        with self._lock:
            try:
                if self._sock is None:
                    self._connect(timeout)
                assert self._sock is not None
                self._sock.settimeout(timeout)
                reply = self._roundtrip(self._sock, db, command)
            except (OSError, ValueError, bson.errors.BSONError) as exc:
                self._close_locked()
                raise PeerError(f"{self.host}: {exc}") from exc
        if not reply.get("ok"):
            raise PeerError(f"{self.host}: {reply.get('errmsg', 'command failed')}", reply)
        return reply

    def _connect(self, timeout: float) -> None:
        name, port = split_host(self.host)
        sock = socket.create_connection((name, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls_context is not None:
                sock = self._tls_context.wrap_socket(sock, server_hostname=name)
            if self._key is not None:
                self._authenticate(sock)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def _authenticate(self, sock: socket.socket) -> None:
        conversation = ScramClientConversation(INTERNAL_USER, self._key or "")
        start = {
            "saslStart": 1,
            "mechanism": MECHANISM,
            "payload": Binary(conversation.client_first()),
            "options": {"skipEmptyExchange": True},
        }
        reply = self._roundtrip(sock, INTERNAL_DB, start)
        if not reply.get("ok"):
            raise OSError(f"internal authentication failed: {reply.get('errmsg')}")
        final = conversation.client_final(bytes(reply["payload"]))
        reply = self._roundtrip(
            sock,
            INTERNAL_DB,
            {"saslContinue": 1, "conversationId": reply["conversationId"], "payload": Binary(final)},
        )
        if not reply.get("ok"):
            raise OSError(f"internal authentication failed: {reply.get('errmsg')}")
        conversation.verify_server_final(bytes(reply["payload"]))

    def _roundtrip(self, sock: socket.socket, db: str, command: dict[str, Any]) -> dict[str, Any]:
        self._request_id += 1
        body = struct.pack("<I", 0) + b"\x00" + bson.encode({**command, "$db": db}, codec_options=CODEC_OPTIONS)
        sock.sendall(_HEADER.pack(_HEADER.size + len(body), self._request_id, 0, OP_MSG) + body)
        header = _recv_exact(sock, _HEADER.size)
        length, _request_id, _response_to, op_code = _HEADER.unpack(header)
        payload = _recv_exact(sock, length - _HEADER.size)
        if op_code != OP_MSG or payload[4] != 0:
            raise ValueError("unexpected reply from member")
        return bson.decode(payload[5:], CODEC_OPTIONS)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by member")
        data += chunk
    return bytes(data)
