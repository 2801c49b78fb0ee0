"""Helpers for tests that run emulator ``mongod`` processes (single members and replica sets) on loopback.

Test-side code: imported by pytest suites, never by the emulator itself. Processes are started through
the launcher ``bin/mongod`` exactly as a service would start them, and stopped by PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .peer import PeerClient, PeerError

EMULATOR_HOME = Path(__file__).resolve().parents[2]
LAUNCHER = EMULATOR_HOME / "bin" / "mongod"
# The full launcher imports the KMIP client too (slow on a busy machine); the network suites default to the
# lighter test entry (python -m psmdb_emulator.server) and use bin/mongod when this variable is set to 1.
USE_LAUNCHER = os.environ.get("PSMDB_EMULATOR_USE_LAUNCHER") == "1"
# A loaded shared machine can take many seconds to import the emulator: be patient, but bounded.
START_TIMEOUT = 90.0
# For members whose test does not need mongod's 15 s shutdown quiesce (shutdownTimeoutMillisForSignaledShutdown).
QUICK_SHUTDOWN = ["--setParameter", "shutdownTimeoutMillisForSignaledShutdown=500"]
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Polls ``check`` until it returns something truthy; fails with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the condition may raise while the system settles
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


class EmulatorProcess:
    """One emulator mongod: start, wait until it listens, stop by SIGTERM or SIGKILL (by PID)."""

    def __init__(
        self,
        workdir: Path,
        host: str,
        port: int,
        extra_args: list[str] | None = None,
        *,
        use_launcher: bool = USE_LAUNCHER,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self.extra_args = list(extra_args or [])
        # bin/mongod runs the core too (dbPath lock, exit codes); the test entry only the network half.
        self.use_launcher = use_launcher
        self.db_path = workdir / "db"
        self.log_path = workdir / "mongod.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self) -> list[str]:
        entry = [str(LAUNCHER)] if self.use_launcher else ["-m", "psmdb_emulator.server"]
        return [
            sys.executable,
            *entry,
            "--dbpath",
            str(self.db_path),
            "--bind_ip",
            self.host,
            "--port",
            str(self.port),
            "--logpath",
            str(self.log_path),
            "--logappend",
            *self.extra_args,
        ]

    def start(self) -> None:
        self.db_path.mkdir(parents=True, exist_ok=True)
        python_path = os.pathsep.join(p for p in (str(EMULATOR_HOME), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PSMDB_EMULATOR_PYTHON": sys.executable, "PYTHONPATH": python_path}
        with open(self.workdir / "stdout.txt", "ab") as out:
            self.process = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT, env=env)

    def listening(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"mongod {self.address} is not running (exit code {code}); see {self.log_path}")
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
            return True
        return False

    def wait_listening(self, timeout: float = START_TIMEOUT) -> None:
        wait_for(self.listening, timeout, f"mongod {self.address} to listen", interval=0.2)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye (a crash)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code; SIGKILL if it does not exit in time."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)

    def signal_term(self) -> None:
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGTERM)

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return int(self.process.wait(timeout=timeout))

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def db_path_locked(self) -> bool:
        """Whether some process holds ``mongod.lock`` (the core's dbPath lock, taken with flock)."""
        lock_file = self.db_path / "mongod.lock"
        if not lock_file.exists():
            return False
        fd = os.open(lock_file, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)


class RawClient(PeerClient):
    """Sends commands verbatim (no driver-added lsid/txnNumber): for retryable-write and protocol tests."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        super().__init__(address, tls_context=None, key=None)
        self.timeout = timeout

    def run(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.command(db, command, self.timeout)
        except PeerError as exc:
            if exc.reply is not None:
                return exc.reply
            raise


def terminate_all(processes: list[EmulatorProcess], timeout: float = 60.0) -> None:
    """SIGTERM every process at once (their shutdown quiesce periods overlap), then wait; SIGKILL stragglers."""
    for process in processes:
        process.signal_term()
    for process in processes:
        process.terminate(timeout)


def replica_set_config(name: str, members: list[EmulatorProcess], **settings: Any) -> dict[str, Any]:
    return {
        "_id": name,
        "members": [{"_id": index, "host": member.address} for index, member in enumerate(members)],
        "settings": settings,
    }


def member_states(member: EmulatorProcess) -> dict[str, str]:
    """name -> stateStr in ``member``'s replSetGetStatus."""
    status = RawClient(member.address, timeout=10).run("admin", {"replSetGetStatus": 1})
    return {m["name"]: m["stateStr"] for m in status.get("members", [])}


def initiate_and_step_up(
    members: list[EmulatorProcess], set_name: str, timeout: float = 120.0, **settings: Any
) -> None:
    """replSetInitiate on the first member, then (once every member is SECONDARY) replSetStepUp on it, as
    MongoDB's ReplSetTest does, instead of waiting an election timeout for the first election."""
    reply = RawClient(members[0].address).run(
        "admin", {"replSetInitiate": replica_set_config(set_name, members, **settings)}
    )
    if not reply.get("ok"):
        raise RuntimeError(f"replSetInitiate failed: {reply}")

    def stepped_up() -> bool:
        states = member_states(members[0])
        if list(states.values()).count("PRIMARY") == 1:
            return True
        if all(state == "SECONDARY" for state in states.values()) and len(states) == len(members):
            RawClient(members[0].address).run("admin", {"replSetStepUp": 1})
        return False

    wait_for(stepped_up, timeout, f"a primary in {set_name}", interval=0.2)
