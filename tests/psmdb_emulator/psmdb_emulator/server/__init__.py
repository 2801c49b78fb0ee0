"""The emulator's network half: wire protocol, commands, replica set, TLS and SCRAM authentication.

Entry point: ``serve(options, store, logger, shutdown)`` (see contracts.py). One thread per client
connection; all server state sits behind one lock in ``Node``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..contracts import DataStore, ShutdownController
from ..logv2 import Logger
from ..netbind import EXIT_NET_ERROR, bind_sockets, close_all, listener_error
from .commands import Connection, dispatch
from .errors import CommandError
from .node import Node
from .settings import ServerSettings
from .wire import ProtocolError, encode_reply, read_request

if TYPE_CHECKING:
    from ..options import Options

__all__ = ["EXIT_NET_ERROR", "bind_or_log", "serve"]

_TLS_HANDSHAKE_FIRST_BYTE = 0x16
_ACCEPT_POLL_SECONDS = 0.2


class Listener:
    """Accepts connections on every net.bindIp address and runs one thread per connection."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._server_tls = node.settings.tls.server_context() if node.settings.tls.enabled else None
        self._listen_sockets: list[socket.socket] = []
        self._clients: dict[int, socket.socket] = {}
        self._clients_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._next_connection_id = 0

    def listen(self, bound: list[socket.socket]) -> None:
        """Starts listening on the sockets bound before the storage engine started (netbind.py)."""
        try:
            for sock, address in zip(bound, self.node.settings.bind_ips, strict=True):
                sock.listen(128)
                sock.settimeout(_ACCEPT_POLL_SECONDS)
                self._listen_sockets.append(sock)
                self.node.logger.log("I", "NETWORK", 23015, "Listening on", {"address": address})
        except OSError:
            close_all(bound)
            self._listen_sockets = []
            raise
        self.node.logger.log(
            "I",
            "NETWORK",
            23016,
            "Waiting for connections",
            {"port": self.node.settings.port, "ssl": "on" if self._server_tls else "off"},
        )

    def start(self) -> None:
        for sock in self._listen_sockets:
            thread = threading.Thread(target=self._accept_loop, args=(sock,), name="listener", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close_listeners(self) -> None:
        for sock in self._listen_sockets:
            sock.close()
        self._listen_sockets = []

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.close_listeners()
        with self._clients_lock:
            clients = list(self._clients.values())
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self, listen_sock: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                sock, peer = listen_sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._next_connection_id += 1
            connection_id = self._next_connection_id
            thread = threading.Thread(
                target=self._serve_connection,
                args=(sock, peer, connection_id),
                name=f"conn{connection_id}",
                daemon=True,
            )
            thread.start()

    def _serve_connection(self, sock: socket.socket, peer: tuple[str, int], connection_id: int) -> None:
        remote = f"{peer[0]}:{peer[1]}"
        node = self.node
        with self._clients_lock:
            self._clients[connection_id] = sock
        with node.lock:
            node.connection_count += 1
            count = node.connection_count
        node.logger.log(
            "I",
            "NETWORK",
            22943,
            "Connection accepted",
            {"remote": remote, "uuid": str(uuid.uuid4()), "connectionId": connection_id, "connectionCount": count},
            ctx="listener",
        )
        conn = Connection(
            connection_id=connection_id, remote=remote, is_loopback=ipaddress.ip_address(peer[0]).is_loopback, tls=False
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            sock = self._maybe_wrap_tls(sock, conn)
            with self._clients_lock:
                self._clients[connection_id] = sock
            while not self._stopping.is_set():
                request = read_request(sock)
                reply = dispatch(node, conn, request)
                if conn.close_after_reply:
                    break  # mongod closes the connection on shutdown without answering
                if not request.more_to_come:
                    sock.sendall(self._encode(request, reply))
        except (ConnectionError, ProtocolError, ssl.SSLError, OSError) as exc:
            if isinstance(exc, ProtocolError | ssl.SSLError):
                node.logger.log(
                    "I", "NETWORK", 22988, "Error receiving request from client", {"error": str(exc), "remote": remote}
                )
        finally:
            with self._clients_lock:
                self._clients.pop(connection_id, None)
            with node.lock:
                node.connection_count -= 1
                count = node.connection_count
                for cursor_id in [c.cursor_id for c in node.cursors.values() if c.connection_id == connection_id]:
                    del node.cursors[cursor_id]
            with contextlib.suppress(OSError):
                sock.close()
            node.logger.log(
                "I",
                "NETWORK",
                22944,
                "Connection ended",
                {"remote": remote, "connectionId": connection_id, "connectionCount": count},
            )

    def _encode(self, request: Any, reply: dict[str, Any]) -> bytes:
        try:
            return encode_reply(request, reply)
        except Exception as exc:  # a reply that cannot be encoded is the server's bug, not the client's
            self.node.logger.log("E", "COMMAND", 99002, "Emulator: reply could not be encoded", {"error": repr(exc)})
            return encode_reply(request, CommandError(8, f"reply could not be encoded: {exc}").to_reply())

    def _maybe_wrap_tls(self, sock: socket.socket, conn: Connection) -> socket.socket:
        mode = self.node.settings.tls.mode
        if self._server_tls is None:
            return sock
        first = sock.recv(1, socket.MSG_PEEK)
        if not first:
            raise ConnectionError("client closed before sending anything")
        if first[0] != _TLS_HANDSHAKE_FIRST_BYTE:
            if mode == "requireTLS":
                raise ProtocolError("client sent a plain-text message but TLS is required (net.tls.mode requireTLS)")
            return sock
        wrapped = self._server_tls.wrap_socket(sock, server_side=True)
        conn.tls = True
        return wrapped


def bind_or_log(options: Options, logger: Logger) -> list[socket.socket] | None:
    """mongod's transport layer set-up (before the storage engine): the bound sockets, or None after logging
    20568 "Error setting up listener" (the caller then exits with 48)."""
    settings = ServerSettings.from_options(options)
    try:
        return bind_sockets(settings.bind_ips, settings.port)
    except OSError as exc:
        logger.log("E", "CONTROL", 20568, "Error setting up listener", {"error": listener_error(exc)})
        return None


def serve(
    options: Options,
    store: DataStore,
    logger: Logger,
    shutdown: ShutdownController,
    listen_sockets: list[socket.socket] | None = None,
) -> None:
    """Serves until ``shutdown`` is requested. ``listen_sockets`` are the sockets the core bound before the
    storage engine started; without them serve binds itself, and a bind failure requests exit code 48."""
    if listen_sockets is None:
        listen_sockets = bind_or_log(options, logger)
        if listen_sockets is None:
            shutdown.request(EXIT_NET_ERROR, "cannot set up the listener")
            return
    settings = ServerSettings.from_options(options)
    node = Node(settings, store, logger, shutdown)
    node.load()
    listener = Listener(node)
    try:
        listener.listen(listen_sockets)
    except OSError as exc:
        logger.log("E", "CONTROL", 20568, "Error setting up listener", {"error": listener_error(exc)})
        shutdown.request(EXIT_NET_ERROR, f"cannot listen on {settings.bind_ips}:{settings.port}: {exc}")
        return
    node.start_flusher()
    listener.start()
    if node.repl is not None:
        node.repl.start()
    try:
        shutdown.wait()
        _shutdown_task(node)
    finally:
        with node.lock:
            node.interrupted_at_shutdown = True
            node.changed.notify_all()  # wake awaitable hellos, write-concern waiters and the shutdown command
        logger.log("I", "NETWORK", 20562, "Shutdown: going to close listening sockets", {})
        listener.stop()
        if node.repl is not None:
            node.repl.stop()
        node.stop_flusher()
        logger.log("I", "STORAGE", 4784929, "Acquiring the global lock for shutdown", {})


def _shutdown_task(node: Node) -> None:
    """mongod_main.cpp shutdownTask, replication part. A signal (or the key-state monitor) steps a primary
    down, waiting up to shutdownTimeoutMillisForSignaledShutdown for a caught-up secondary; the shutdown
    command has done its step-down already and left its quiesce time. A member that is then SECONDARY
    quiesces for the rest of that time: it keeps serving (and the dbPath stays locked), but hello answers
    ShutdownInProgress so that clients go elsewhere. Connections are refused only after quiesce."""
    repl = node.repl
    if repl is None:
        return
    quiesce = node.command_quiesce_seconds
    if quiesce is None:
        timeout = node.settings.signaled_shutdown_timeout
        started = time.monotonic()
        node.logger.log(
            "I",
            "REPL",
            4784900,
            "Stepping down the ReplicationCoordinator for shutdown",
            {"waitTimeMillis": int(timeout * 1000)},
        )
        repl.step_down_for_shutdown(timeout, signaled=True)
        quiesce = max(0.0, timeout - (time.monotonic() - started))
    if not repl.enter_quiesce_if_secondary(quiesce):
        return
    node.logger.log(
        "I", "REPL", 4695102, "Entering quiesce mode for shutdown", {"quiesceTimeMillis": int(quiesce * 1000)}
    )
    deadline = time.monotonic() + quiesce
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 0.1))
    node.logger.log("I", "REPL", 4695103, "Exiting quiesce mode for shutdown", {})
