"""Interfaces between the emulator's start-up/encryption core and its network server.

The core (options, KMIP, keystore, storage, rotation, polling) owns process start and
shutdown; the server (wire protocol, commands, replica set, auth) gets a ready DataStore and
runs until asked to stop. Keeping the contract here lets both halves be tested alone.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class DataStore(Protocol):
    """Durable per-database blobs. Encryption, when enabled, is invisible to the caller.

    The server serialises a whole database (its collections, indexes, oplog...) as bytes; the
    store encrypts them with that database's key from the keystore (itself encrypted with the
    master key), so a mongod started with the wrong master key cannot read them.
    """

    def list_dbs(self) -> list[str]: ...

    def read_db(self, name: str) -> bytes | None: ...

    def write_db(self, name: str, data: bytes) -> None: ...

    def drop_db(self, name: str) -> None: ...

    def encryption_status(self) -> dict[str, Any] | None:
        """The ``serverStatus().encryptionAtRest`` document (psmdb-kmip.md section 5).

        None when the emulated build has no such section: the default, as PSMDB 7.0.14-8 has none
        (``PSMDB_EMULATOR_ENCRYPTION_STATUS=1`` emulates a newer build that has it). serverStatus
        then leaves the field out.
        """
        ...


class ShutdownController:
    """A process-wide request to stop, with the exit code to use.

    The first request wins: a key-state poll asking for exit 1001 is not overwritten by a
    later clean shutdown.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.exit_code = 0
        self.reason = ""

    def request(self, exit_code: int, reason: str) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.exit_code = exit_code
            self.reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
