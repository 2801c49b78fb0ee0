"""The listening sockets, bound before the storage engine starts, as mongod does.

mongod 7.0's ``_initAndListen`` (mongod_main.cpp) sets up the transport layer, which binds every
``net.bindIp`` address on ``net.port``, before ``initializeStorageEngine`` (dbPath lock, encryption
start-up, master key rotation); it listens and logs "Waiting for connections" only once storage is up.
So a start, a rotation included, whose port is held by another process fails with log 20568 "Error
setting up listener" and exit 48 (ExitCode::netError), before touching the dbPath or the KMIP server.
Between bind and listen, connections to the port are refused.
"""

from __future__ import annotations

import contextlib
import socket

EXIT_NET_ERROR = 48  # ExitCode::netError


def listen_addresses(bind_ips: list[str], bind_ip_all: bool) -> list[str]:
    return ["0.0.0.0"] if bind_ip_all else list(bind_ips)


def bind_sockets(addresses: list[str], port: int) -> list[socket.socket]:
    """Bound, not yet listening, sockets (SO_REUSEADDR, like ASIO's acceptors); OSError when one cannot bind."""
    bound: list[socket.socket] = []
    try:
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
    except OSError:
        close_all(bound)
        raise
    return bound


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()


def listener_error(exc: OSError) -> dict[str, object]:
    """``attr.error`` of log 20568: the SocketException mongod reports (errmsg is the system's text)."""
    return {"code": 9001, "codeName": "SocketException", "errmsg": exc.strerror or str(exc)}
