"""Test-side helpers for the emulator's conformance tests (never used by ``mongod`` itself).

The KMIP lab on the emulator range 127.0.30.0/24 (docs/DEVELOPMENT.md), an operator-side KMIP
client, and emulated ``mongod`` processes with their JSON logs. Needs ``tests/`` on sys.path
for ``kmiplab``.

  127.0.30.1:5696  PyKMIP "kmip1"        127.0.30.2:5696  PyKMIP "kmip2"
  127.0.30.3:5696  silent TCP port       127.0.30.4:5696  nothing listening (refused)
  127.0.30.6:5696  TLS with a certificate for other names (hostname check)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kmip.core import enums, objects
from kmip.core.attributes import UniqueIdentifier
from kmip.core.messages import payloads

from kmiplab.pki import LabPki, ServerCert
from kmiplab.server import PyKmipServer
from psmdb_emulator.kmip_client import KmipConnector, KmipSession, KmipUnreachableError, generate_master_key
from psmdb_emulator.logv2 import Logger
from psmdb_emulator.options import KmipOptions

EMULATOR_ROOT = Path(__file__).resolve().parent.parent
MONGOD = EMULATOR_ROOT / "bin" / "mongod"
KMIP1 = "127.0.30.1"
KMIP2 = "127.0.30.2"
SILENT = "127.0.30.3"
REFUSED = "127.0.30.4"
WRONG_HOST = "127.0.30.6"
MONGOD_ADDRESS = "127.0.30.10"
KMIP_PORT = 5696
CLIENT_CN = "mongod1"
# the machine is shared: generous deadlines, never fixed sleeps
PROCESS_DEADLINE = 300.0
SLOW_MACHINE_TIMEOUT_MS = 60_000
T = TypeVar("T")


@dataclass
class KmipLab:
    pki: LabPki
    servers: dict[str, PyKmipServer]

    @property
    def ca_file(self) -> str:
        return str(self.pki.ca.cert)

    @property
    def client_pem(self) -> str:
        return str(self.pki.client(CLIENT_CN).pem)

    def kmip_args(self, *hosts: str, **extra: Any) -> list[str]:
        """mongod flags for KMIP encryption against ``hosts`` (default: kmip1)."""
        args = [
            "--enableEncryption",
            "--kmipServerName",
            ",".join(hosts or (KMIP1,)),
            "--kmipPort",
            str(KMIP_PORT),
            "--kmipServerCAFile",
            self.ca_file,
            "--kmipClientCertificateFile",
            self.client_pem,
        ]
        # the shared test machine can be slow enough to break mongod's 5 s default
        extra.setdefault("kmipConnectTimeoutMS", SLOW_MACHINE_TIMEOUT_MS)
        for name, value in extra.items():
            flag = "--" + name
            if value is True:
                args.append(flag)
            else:
                args += [flag, str(value)]
        return args


class MemoryLogger(Logger):
    """A logv2 Logger that keeps the entries in memory (for test-side KMIP clients)."""

    def __init__(self) -> None:
        super().__init__(os.devnull)
        self.entries: list[dict[str, Any]] = []

    def log(
        self,
        severity: str,
        component: str,
        log_id: int,
        msg: str,
        attr: dict[str, Any] | None = None,
        ctx: str | None = None,
    ) -> None:
        self.entries.append({"s": severity, "c": component, "id": log_id, "msg": msg, "attr": attr or {}})


class KmipAdmin:
    """What an operator does on the KMIP server: register/activate/revoke/destroy/inspect keys.

    Uses mongod's identity: with PyKMIP's default policy only the owner sees a key.
    """

    def __init__(self, lab: KmipLab, address: str = KMIP1, client_pem: str | None = None) -> None:
        # setup steps, not behaviour under test: patient and retried on the loaded machine
        options = KmipOptions(
            server_name=[address],
            port=KMIP_PORT,
            server_ca_file=lab.ca_file,
            client_certificate_file=client_pem or lab.client_pem,
            connect_timeout_ms=SLOW_MACHINE_TIMEOUT_MS,
            connect_retries=2,
        )
        self.log = MemoryLogger()
        self._connector = KmipConnector(options, self.log)

    def _run(self, operation: Callable[[KmipSession], T]) -> T:
        try:
            return self._connector.run(operation)
        except KmipUnreachableError:
            reasons = [entry["attr"]["reason"] for entry in self.log.entries if entry["id"] == 29117]
            raise AssertionError(f"KMIP admin operation failed: {reasons[-3:]}") from None

    def register(self, *, activate: bool, material: bytes | None = None) -> str:
        """Register a 256-bit key (random, or ``material``), Active when ``activate``."""

        def run(session: KmipSession) -> str:
            uid = session.register_symmetric_key(material or generate_master_key())
            if activate:
                session.activate(uid)
            return uid

        return self._run(run)

    def state(self, uid: str) -> str:
        return self._run(lambda session: session.get_state(uid)).name

    def key(self, uid: str) -> bytes | None:
        return self._run(lambda session: session.get_symmetric_key(uid))

    def revoke(self, uid: str) -> None:
        payload = payloads.RevokeRequestPayload(
            unique_identifier=UniqueIdentifier(uid),
            revocation_reason=objects.RevocationReason(code=enums.RevocationReasonCode.CESSATION_OF_OPERATION),
        )
        self._run(lambda session: session.execute(enums.Operation.REVOKE, payload))

    def destroy(self, uid: str) -> None:
        payload = payloads.DestroyRequestPayload(unique_identifier=UniqueIdentifier(uid))
        self._run(lambda session: session.execute(enums.Operation.DESTROY, payload))


def kmip_object_count(server: PyKmipServer) -> int:
    """How many managed objects the PyKMIP server holds (read-only look at its database)."""
    with contextlib.closing(sqlite3.connect(f"file:{server.database_path}?mode=ro", uri=True, timeout=60)) as db:
        return int(db.execute("SELECT COUNT(*) FROM managed_objects").fetchone()[0])


class WrongHostTls:
    """Completes TLS handshakes with a certificate for other names, then closes."""

    def __init__(self, address: str, port: int, cert: ServerCert) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(cert.cert), str(cert.key))
        self._socket = socket.create_server((address, port))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="WrongHostTls", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)
            with contextlib.suppress(OSError, ssl.SSLError), self._context.wrap_socket(connection, server_side=True):
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@dataclass
class MongodProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    db_path: Path
    stderr_path: Path
    exit_code: int | None = None
    _lines: list[dict[str, Any]] = field(default_factory=list)

    def log(self) -> list[dict[str, Any]]:
        try:
            text = self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def log_ids(self) -> list[int]:
        return [line["id"] for line in self.log()]

    def entries(self, log_id: int) -> list[dict[str, Any]]:
        return [line for line in self.log() if line["id"] == log_id]

    def wait_for_log(self, log_id: int, timeout: float = PROCESS_DEADLINE) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.entries(log_id)
            if found:
                return found[0]
            if self.process.poll() is not None:
                found = self.entries(log_id)
                if found:
                    return found[0]
                raise AssertionError(
                    f"mongod exited ({self.process.returncode}) without log id {log_id}:\n{self.tail()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no log id {log_id} within {timeout} s:\n{self.tail()}")

    def wait_exit(self, timeout: float = PROCESS_DEADLINE) -> int:
        try:
            self.exit_code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"mongod still running after {timeout} s:\n{self.tail()}") from None
        return self.exit_code

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def tail(self) -> str:
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-20:] if self.log_path.exists() else []
        return "\n".join(lines) + ("\n--- stderr ---\n" + stderr if stderr else "")


def start_mongod(
    workdir: Path,
    index: int,
    *args: str,
    db_path: Path | None = None,
    with_db_path: bool = True,
    with_server: bool = False,
    env: dict[str, str] | None = None,
) -> MongodProcess:
    """Run ``bin/mongod`` under this interpreter, logging to ``workdir/mongod-<index>.log``.

    The network half is disabled (PSMDB_EMULATOR_NO_SERVER=1) unless ``with_server``: these
    tests cover start-up, encryption and shutdown. ``env`` adds variables (test hooks...).
    """
    db = db_path or workdir / "db"
    db.mkdir(exist_ok=True)
    log_path = workdir / f"mongod-{index}.log"
    stderr_path = workdir / f"mongod-{index}.stderr"
    argv = [sys.executable, str(MONGOD), "--port", str(27017 + index), "--bind_ip", MONGOD_ADDRESS]
    if with_db_path:
        argv += ["--dbpath", str(db)]
    argv += ["--logpath", str(log_path), "--logappend", *args]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            env={
                **os.environ,
                "PSMDB_EMULATOR_NO_SERVER": "0" if with_server else "1",
                "PYTHONWARNINGS": "ignore",
                **(env or {}),
            },
        )
    return MongodProcess(process, log_path, db, stderr_path)
