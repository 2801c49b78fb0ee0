"""MongoDB wire protocol framing: OP_MSG for everything pymongo 4 sends, OP_QUERY/OP_REPLY for legacy handshakes."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.codec_options import CodecOptions

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16

MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000

_HEADER = struct.Struct("<iiii")
CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(document_class=dict, tz_aware=True)


class ProtocolError(Exception):
    """The peer sent bytes that are not a message we understand; the connection is closed."""


@dataclass
class Request:
    request_id: int
    op_code: int
    command: dict[str, Any]
    db: str
    flags: int = 0
    # Document sequences (OP_MSG section kind 1) are merged into ``command`` under their identifier.
    sequences: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def exhaust_allowed(self) -> bool:
        return bool(self.flags & MSG_EXHAUST_ALLOWED)

    @property
    def more_to_come(self) -> bool:
        """The client wants no reply (unacknowledged write)."""
        return self.op_code == OP_MSG and bool(self.flags & MSG_MORE_TO_COME)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks += chunk
    return bytes(chunks)


def read_request(sock: socket.socket) -> Request:
    header = _recv_exact(sock, _HEADER.size)
    length, request_id, _response_to, op_code = _HEADER.unpack(header)
    if length < _HEADER.size or length > MAX_MESSAGE_SIZE:
        raise ProtocolError(f"invalid message length {length}")
    body = _recv_exact(sock, length - _HEADER.size)
    if op_code == OP_MSG:
        return _parse_op_msg(request_id, body)
    if op_code == OP_QUERY:
        return _parse_op_query(request_id, body)
    raise ProtocolError(f"unsupported opCode {op_code}")


def _parse_op_msg(request_id: int, body: bytes) -> Request:
    (flags,) = struct.unpack_from("<I", body, 0)
    end = len(body) - 4 if flags & MSG_CHECKSUM_PRESENT else len(body)
    pos = 4
    command: dict[str, Any] | None = None
    sequences: dict[str, list[dict[str, Any]]] = {}
    while pos < end:
        kind = body[pos]
        pos += 1
        if kind == 0:
            (size,) = struct.unpack_from("<i", body, pos)
            command = bson.decode(body[pos : pos + size], CODEC_OPTIONS)
            pos += size
        elif kind == 1:
            (size,) = struct.unpack_from("<i", body, pos)
            section_end = pos + size
            name_end = body.index(b"\x00", pos + 4)
            identifier = body[pos + 4 : name_end].decode()
            sequences[identifier] = bson.decode_all(body[name_end + 1 : section_end], CODEC_OPTIONS)
            pos = section_end
        else:
            raise ProtocolError(f"unknown OP_MSG section kind {kind}")
    if command is None:
        raise ProtocolError("OP_MSG without a body section")
    for identifier, documents in sequences.items():
        command.setdefault(identifier, []).extend(documents)
    db = command.get("$db")
    if not isinstance(db, str):
        raise ProtocolError("OP_MSG command without $db")
    return Request(request_id, OP_MSG, command, db, flags, sequences)


def _parse_op_query(request_id: int, body: bytes) -> Request:
    (flags,) = struct.unpack_from("<i", body, 0)
    name_end = body.index(b"\x00", 4)
    full_name = body[4:name_end].decode()
    pos = name_end + 1 + 8  # skip numberToSkip and numberToReturn
    (size,) = struct.unpack_from("<i", body, pos)
    query = bson.decode(body[pos : pos + size], CODEC_OPTIONS)
    db, _, collection = full_name.partition(".")
    if collection != "$cmd":
        raise ProtocolError("OP_QUERY is only supported for commands")
    # Legacy drivers wrap commands as {$query: {...}, $readPreference: ...}.
    if "$query" in query:
        command = dict(query["$query"])
        if "$readPreference" in query:
            command["$readPreference"] = query["$readPreference"]
    else:
        command = query
    return Request(request_id, OP_QUERY, command, db, flags)


_next_request_id = 0


def _new_request_id() -> int:
    global _next_request_id
    _next_request_id = (_next_request_id + 1) & 0x7FFFFFFF
    return _next_request_id


def encode_reply(request: Request, reply: dict[str, Any], more_to_come: bool = False) -> bytes:
    payload = bson.encode(reply, codec_options=CODEC_OPTIONS)
    if request.op_code == OP_QUERY:
        body = struct.pack("<iqii", 8, 0, 0, 1) + payload  # flags=AwaitCapable, one document
        op_code = OP_REPLY
    else:
        flags = MSG_MORE_TO_COME if more_to_come else 0
        body = struct.pack("<I", flags) + b"\x00" + payload
        op_code = OP_MSG
    return _HEADER.pack(_HEADER.size + len(body), _new_request_id(), request.request_id, op_code) + body
