# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real PyKMIP server on a loopback address, started and stopped fast, for tests.

The server is PyKMIP's own server main (through ``kmiplab.pykmip_main``, which only raises
PyKMIP's 10 s per-connection socket timeout to ``socket_timeout``, 60 s by default, because a
saturated CI machine needs more for a TLS handshake), with its own
config file, SQLite database, policy directory and log under ``workdir`` (never the shared
defaults under /tmp). It logs at INFO: at DEBUG PyKMIP writes raw key bytes into its log.

PyKMIP forks a multiprocessing manager and a policy-monitor process, and its accept loop only
wakes every 10 s, so a plain SIGTERM takes 8-10 s. The server therefore runs in its own
session (process group): ``stop()`` sends SIGTERM to that group, waits a short grace and then
SIGKILLs the group, and returns only when no process of the group can run any more
(``kmiplab.process_group``): the forked helpers outlive the leader, and while one is dying it
still holds the listening socket. The database is committed per operation, so nothing is lost.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

from kmiplab.pki import ClientCert, ServerCert
from kmiplab.ports import PlainTcpPort, SilentPort, free_port, wait_for
from kmiplab.process_group import terminate_group

__all__ = [
    "DEFAULT_KMIP_PORT",
    "SHARED_KEY_OPERATIONS",
    "SHARED_POLICY_NAME",
    "PlainTcpPort",
    "PyKmipServer",
    "ServerStartError",
    "SilentPort",
    "free_port",
    "shared_key_policy",
]

DEFAULT_KMIP_PORT = 5696
_TESTS_DIR = Path(__file__).resolve().parents[1]  # so the child can import kmiplab.pykmip_main
#: name of the policy the conftest servers load (see shared_key_policy)
SHARED_POLICY_NAME = "kmiplab-shared"

#: what PSMDB and the collection's modules do on a symmetric key
SHARED_KEY_OPERATIONS: tuple[str, ...] = (
    "GET",
    "GET_ATTRIBUTES",
    "GET_ATTRIBUTE_LIST",
    "ACTIVATE",
    "REVOKE",
    "DESTROY",
    "LOCATE",
    "CHECK",
    "ADD_ATTRIBUTE",
    "MODIFY_ATTRIBUTE",
    "DELETE_ATTRIBUTE",
)

_OPERATION_LINE = re.compile(r" - kmip\.server\.engine - INFO - Processing operation: (?P<op>[A-Za-z ]+)$")
_IDENTITY_LINE = re.compile(r" - INFO - Session client identity: (?P<identity>.+)$")


class ServerStartError(RuntimeError):
    """The server did not come up; the message carries the end of its log."""


def shared_key_policy(operations: tuple[str, ...] = SHARED_KEY_OPERATIONS) -> dict[str, dict[str, str]]:
    """A PyKMIP operation policy letting every authenticated client use symmetric keys.

    PyKMIP has no per-identity grants (groups need an external SLUGS service): an object is
    governed by the policy named in its ``Operation Policy Name`` attribute, ``default``
    (owner only) unless the client set another one at Register/Create. A key registered with
    ``operation_policy_name=<this policy's name>`` is therefore usable by other identities.
    """
    return {"SYMMETRIC_KEY": dict.fromkeys(operations, "ALLOW_ALL")}


class PyKmipServer:
    """One PyKMIP server process; a context manager (``with PyKmipServer(...) as server``).

    ``probe_client`` is any client identity the server accepts: readiness means a verified
    TLS 1.2 handshake with it (chain against the server's issuing CA, host name against the
    first name in the server certificate), so the server is serving its certificate.
    ``policies`` maps policy names to PyKMIP policy bodies (see ``shared_key_policy``); they
    are written to the policy directory and the start waits until PyKMIP has loaded them.
    ``socket_timeout`` bounds each session's handshake and reads (PyKMIP's own: 10 s).
    ``stop_timeout`` bounds how long ``stop()`` waits for the killed group to be gone.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        address: str,
        server_cert: ServerCert,
        ca_file: str | os.PathLike[str],
        probe_client: ClientCert,
        port: int = DEFAULT_KMIP_PORT,
        policies: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
        enable_tls_client_auth: bool = True,
        start_timeout: float = 180.0,
        stop_grace: float = 0.5,
        stop_timeout: float = 60.0,
        socket_timeout: float = 60.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.address = address
        self.port = port
        self.server_cert = server_cert
        self.ca_file = Path(ca_file)
        self.probe_client = probe_client
        self.policies = dict(policies or {})
        self.enable_tls_client_auth = enable_tls_client_auth
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.stop_timeout = stop_timeout
        self.socket_timeout = socket_timeout
        self.config_path = self.workdir / "server.conf"
        self.log_path = self.workdir / "server.log"
        self.stderr_path = self.workdir / "server.stderr"
        self.database_path = self.workdir / "pykmip.sqlite"
        self.policy_dir = self.workdir / "policies"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PyKmipServer:
        if self._process is not None:
            raise RuntimeError(f"PyKMIP server {self.endpoint} already started")
        self._write_config()
        stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                cwd=self.workdir,
                start_new_session=True,  # own process group: stop() reaches PyKMIP's forked helpers
                env={
                    **os.environ,
                    "PYTHONWARNINGS": "ignore",
                    "PYTHONPATH": os.pathsep.join([str(_TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
                    "KMIPLAB_PYKMIP_SOCKET_TIMEOUT": str(self.socket_timeout),
                },
            )
        finally:
            stderr.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``stop_grace``; idempotent.

        Returns when no process of the group can run any more (the port is free, nothing writes
        the database or the log), or raises ``ProcessGroupSurvivedError`` after ``stop_timeout``.
        """
        process = self._process
        if process is None:
            return
        self._process = None
        # start_new_session made the server its group leader; signalled before it is reaped,
        # so the group id cannot belong to anything else yet
        terminate_group(process.pid, grace=self.stop_grace, timeout=self.stop_timeout)
        process.wait(timeout=10)  # reap the leader, dead by now

    def __enter__(self) -> PyKmipServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- observation ----------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_offset(self) -> int:
        """Current end of the log, to look only at what happens after it (``since=``)."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _log_lines(self, since: int) -> Iterator[str]:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                data = log.read()
        except FileNotFoundError:
            return
        yield from data.decode("utf-8", errors="replace").splitlines()

    def operations(self, since: int = 0) -> list[str]:
        """KMIP operations the server processed, in order (``["Register", "Activate", ...]``)."""
        return [m["op"] for line in self._log_lines(since) if (m := _OPERATION_LINE.search(line))]

    def sessions(self, since: int = 0) -> int:
        """TLS sessions the server started (readiness probes included)."""
        return sum(
            1 for line in self._log_lines(since) if "kmip.server.session" in line and "Starting session:" in line
        )

    def client_identities(self, since: int = 0) -> list[str]:
        """Client identities (certificate CNs) of the requests the server authenticated."""
        return [m["identity"] for line in self._log_lines(since) if (m := _IDENTITY_LINE.search(line))]

    def tls_context(self, client: ClientCert, *, cafile: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
        """A verifying TLS 1.2 client context presenting ``client`` (for raw-socket tests)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(cafile=str(cafile or self.server_cert.issuer_ca))
        context.load_cert_chain(str(client.pem), password=client.password)
        return context

    # -- internals ------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "kmiplab.pykmip_main", "-f", str(self.config_path), "-l", str(self.log_path)]

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.policy_dir.mkdir(exist_ok=True)
        for name, body in self.policies.items():
            (self.policy_dir / f"{name}.json").write_text(json.dumps({name: body}, indent=2), encoding="utf-8")
        settings = {
            "hostname": self.address,
            "port": str(self.port),
            "certificate_path": str(self.server_cert.cert),
            "key_path": str(self.server_cert.key),
            "ca_path": str(self.ca_file),
            "auth_suite": "TLS1.2",
            "policy_path": str(self.policy_dir),
            "enable_tls_client_auth": str(self.enable_tls_client_auth),
            "logging_level": "INFO",  # never DEBUG: PyKMIP logs key bytes at DEBUG
            "database_path": str(self.database_path),
        }
        text = "[server]\n" + "".join(f"{key}={value}\n" for key, value in settings.items())
        self.config_path.write_text(text, encoding="utf-8")

    def _probe_tls(self) -> bool:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=str(self.server_cert.issuer_ca))
        context.load_cert_chain(str(self.probe_client.pem), password=self.probe_client.password)
        try:
            with (
                socket.create_connection((self.address, self.port), timeout=15.0) as raw,
                context.wrap_socket(raw, server_hostname=self.server_cert.names[0]),
            ):
                return True
        except ssl.SSLCertVerificationError:
            raise
        except OSError:
            return False

    def _policies_loaded(self) -> bool:
        text = self.log_text()
        return all(f"Loading policy: {name}" in text for name in self.policies)

    def _wait_ready(self) -> None:
        def ready() -> bool:
            if not self.running:
                raise ServerStartError(self._start_failure("exited during start-up"))
            return self._probe_tls() and self._policies_loaded()

        if not wait_for(ready, timeout=self.start_timeout, interval=0.05):
            raise ServerStartError(self._start_failure(f"not ready within {self.start_timeout:.0f} s"))

    def _start_failure(self, what: str) -> str:
        tail = "\n".join(self.log_text().splitlines()[-15:])
        try:
            err = "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-15:])
        except FileNotFoundError:
            err = ""
        return f"PyKMIP server {self.endpoint} {what}\n--- log tail ---\n{tail}\n--- stderr tail ---\n{err}"
