# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Misbehaving TCP endpoints and port helpers for failure tests.

``SilentPort`` accepts connections and never sends a byte, so a client's connect timeout
(which for mongod covers the TLS handshake and first exchange) is what ends the attempt.
``PlainTcpPort`` is a non-TLS service: it answers every connection with plain text and closes
it, so a client sees a TLS protocol error rather than a timeout.
Both run in a background thread of the calling process and count the connections they took.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType


def free_port(address: str) -> int:
    """A TCP port that is free on ``address`` right now (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
        return True


def wait_for(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class _Listener:
    """A listening socket served by a daemon thread; subclasses decide what a connection gets."""

    def __init__(self, address: str, port: int | None = None) -> None:
        self.address = address
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((address, port or 0))
        self.port = int(self._socket.getsockname()[1])
        self._socket.listen(64)
        self._socket.settimeout(0.2)  # lets the thread notice stop() without a wake-up connection
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name=f"{type(self).__name__}-{self.endpoint}", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self._accepted

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _peer = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted += 1
            self._handle(connection)

    def _handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._socket.close()
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            connection.close()

    def __enter__(self) -> _Listener:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SilentPort(_Listener):
    """Accepts every connection and keeps it open without ever sending anything."""

    def _handle(self, connection: socket.socket) -> None:
        with self._lock:
            self._held.append(connection)

    def __enter__(self) -> SilentPort:
        return self


class PlainTcpPort(_Listener):
    """A non-TLS service: answers each connection with ``reply`` and closes it."""

    def __init__(
        self, address: str, port: int | None = None, reply: bytes = b"HTTP/1.0 400 Bad Request\r\n\r\nnot KMIP\r\n"
    ) -> None:
        self.reply = reply
        super().__init__(address, port)

    def _handle(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            connection.sendall(self.reply)
            connection.shutdown(socket.SHUT_RDWR)
        connection.close()

    def __enter__(self) -> PlainTcpPort:
        return self


class CountingTcpProxy(_Listener):
    """Forwards every connection to ``upstream`` and counts them (one per TLS session).

    The bytes stay encrypted, so the proxy counts connections and bytes only; which KMIP
    operations went through is read from the PyKMIP server's log.
    """

    def __init__(self, address: str, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.bytes_up = 0
        self.bytes_down = 0
        super().__init__(address, port)

    def _handle(self, connection: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            connection.close()
            return
        for conn in (connection, upstream):
            conn.settimeout(None)
        with self._lock:
            self._held += [connection, upstream]
        threading.Thread(target=self._pump, args=(connection, upstream, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, connection, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upwards: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                with self._lock:
                    if upwards:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def __enter__(self) -> CountingTcpProxy:
        return self
