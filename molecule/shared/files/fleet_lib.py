# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the controller-side test tools (fleet_writer, fleet_sampler, fleet_tool, fleet_check).

These tools judge a fleet from outside the collection: they run on the controller with the
repo's venv (pymongo, PyKMIP) and reach the test hosts directly (the containers share the
machine's network, each on its own loopback address). The fleet comes from fleet.json, written
by molecule/shared/tasks/fleet_description.yml: members (host, address, replica set, cluster
role), KMIP servers, CA and PKI directory. The admin password comes from KMIPOPS_ADMIN_PASSWORD,
never from the command line or a file the tools write.

Member names (mongo1, ...) resolve only inside the containers (their /etc/hosts). The tools
resolve them in-process from fleet.json (``install_resolver``), so that replica-set discovery
and TLS host name checks work with the names the members know each other by, and nothing on
the machine (/etc/hosts) is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pymongo import MongoClient

# The PyKMIP test lab's helpers (tests/kmiplab: test tooling outside the collection, like this).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from kmiplab.ports import wait_for as poll

T = TypeVar("T")
PORT = 27017
WRITES_COLLECTION = "kmipops_rotation_writes"
# A config server accepts user collections only in its internal databases (mongod error 14037,
# "can't create user databases on a --configsvr instance"); shard and plain sets take any.
CONFIGSVR_DATABASE = "admin"
DEFAULT_DATABASE = "kmipops_test"


@dataclass(frozen=True)
class Member:
    host: str
    address: str
    replset: str
    cluster_role: str = ""

    @property
    def name(self) -> str:
        """host:port, as the replica set config names the member."""
        return f"{self.host}:{PORT}"


@dataclass(frozen=True)
class KmipServer:
    host: str
    address: str
    port: int = 5696


@dataclass
class Fleet:
    ca_file: str
    pki_dir: str
    admin_user: str
    members: list[Member]
    kmip_servers: list[KmipServer] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Fleet:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        roles = data.get("cluster_roles") or {}
        members = [
            Member(host, address, data["replsets"][host], roles.get(host) or "")
            for host, address in data["addresses"].items()
        ]
        servers = [KmipServer(host, address) for host, address in data.get("kmip_addresses", {}).items()]
        return cls(data["ca_file"], data["pki_dir"], data["admin_user"], members, servers)

    def sets(self, only: list[str] | None = None) -> dict[str, list[Member]]:
        """Replica set name -> members in fleet order; ``only`` selects sets (unknown names are errors)."""
        result: dict[str, list[Member]] = {}
        for member in self.members:
            result.setdefault(member.replset, []).append(member)
        if only:
            unknown = sorted(set(only) - set(result))
            if unknown:
                raise SystemExit(f"unknown replica set(s) {unknown}; the fleet has {sorted(result)}")
            result = {name: result[name] for name in only}
        return result

    def member(self, host: str) -> Member:
        for member in self.members:
            if member.host == host:
                return member
        raise SystemExit(f"unknown member {host!r}; the fleet has {[m.host for m in self.members]}")

    def database(self, replset: str) -> str:
        roles = {m.cluster_role for m in self.members if m.replset == replset}
        return CONFIGSVR_DATABASE if "configsvr" in roles else DEFAULT_DATABASE

    def install_resolver(self) -> None:
        names = {m.host: m.address for m in self.members}
        names.update({s.host: s.address for s in self.kmip_servers})
        install_resolver(names)


_RESOLVER_NAMES: dict[str, str] = {}


def install_resolver(names: dict[str, str]) -> None:
    """Resolve the test host names to their loopback addresses in this process only."""
    if not _RESOLVER_NAMES:
        original = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host in _RESOLVER_NAMES:
                host = _RESOLVER_NAMES[host]
            return original(host, port, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    _RESOLVER_NAMES.update(names)


def admin_password() -> str:
    password = os.environ.get("KMIPOPS_ADMIN_PASSWORD", "")
    if not password:
        raise SystemExit("KMIPOPS_ADMIN_PASSWORD is not set (the tools never take the password as an argument)")
    return password


def _tls(fleet: Fleet) -> dict[str, Any]:
    return {"tls": True, "tlsCAFile": fleet.ca_file}


def _credentials(fleet: Fleet) -> dict[str, Any]:
    return {"username": fleet.admin_user, "password": admin_password(), "authSource": "admin"}


def member_client(fleet: Fleet, member: Member, *, auth: bool = True, **options: Any) -> MongoClient:
    """A direct connection to one member (reads on secondaries allowed, as for any direct connection)."""
    settings: dict[str, Any] = {
        "directConnection": True,
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 3000,
        "socketTimeoutMS": 30000,
        **_tls(fleet),
    }
    if auth:
        settings.update(_credentials(fleet))
    settings.update(options)
    return MongoClient(member.host, PORT, **settings)


def set_client(fleet: Fleet, replset: str, **options: Any) -> MongoClient:
    """A replica-set connection (discovery, failover, retryable writes) to one set, authenticated."""
    hosts = ",".join(m.name for m in fleet.sets([replset])[replset])
    settings: dict[str, Any] = {"replicaSet": replset, **_tls(fleet), **_credentials(fleet)}
    settings.update(options)
    return MongoClient(f"mongodb://{hosts}/", **settings)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy; SystemExit naming ``what`` at the deadline.

    ``check`` may raise while the fleet settles: the last error goes into the message.
    """
    seen: dict[str, Any] = {}

    def attempt() -> bool:
        try:
            seen["value"] = check()
        except Exception as exc:
            seen["error"] = exc
            return False
        return bool(seen["value"])

    if not poll(attempt, timeout=timeout, interval=interval):
        error = seen.get("error")
        detail = f" (last error: {type(error).__name__}: {error})" if error else ""
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
    return seen["value"]


def find_primary(fleet: Fleet, replset: str, timeout: float = 5.0) -> tuple[Member, dict[str, Any]]:
    """The set's primary as the driver discovers it, and the primary's replSetGetStatus."""
    with set_client(fleet, replset, serverSelectionTimeoutMS=int(timeout * 1000)) as client:
        status = client.admin.command("replSetGetStatus")  # read preference primary
        address = client.primary
    if address is None:
        raise LookupError(f"no primary in {replset}")
    return fleet.member(address[0]), status


# -- files ---------------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    return records


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


# -- background processes (writer, sampler) --------------------------------------------------------


def start_background(argv: list[str], pid_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached (own session, no tty, output to ``log_file``); record its PID."""
    if pid_file.exists() and is_running(_read_pid(pid_file), argv[1]):
        raise SystemExit(f"{pid_file} names a running process; stop it first")
    with log_file.open("wb") as log, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=log, start_new_session=True)
    pid_file.write_text(f"{process.pid}\n", encoding="ascii")
    return process


def stop_background(pid_file: Path, script: str, timeout: float = 60.0) -> bool:
    """SIGTERM the process of ``pid_file`` (only if it still runs ``script``) and wait until it exits."""
    if not pid_file.exists():
        return False
    pid = _read_pid(pid_file)
    if not is_running(pid, script):
        pid_file.unlink()
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(pid, script):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            break
        time.sleep(0.2)
    pid_file.unlink()
    return True


def _read_pid(pid_file: Path) -> int:
    return int(pid_file.read_text(encoding="ascii").strip())


def is_running(pid: int, script: str) -> bool:
    """The PID runs ``script`` (a reused PID of another program does not count) and is not a zombie."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return any(Path(arg.decode(errors="replace")).name == Path(script).name for arg in cmdline)


def stop_event() -> threading.Event:
    """An event set by SIGTERM/SIGINT: the tools' loops wait on it instead of sleeping."""
    event = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        event.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return event


@dataclass
class BackgroundTool:
    """A tool that ``start`` runs detached (its ``run`` loop) and ``stop`` ends by its PID file.

    Its files are ``<dir>/<name>-<label>.pid``, ``.log`` and its records ``<name>-<label><suffix>``
    (removed by ``start``). ``start`` returns once ``ready`` says so (or fails with the tool's
    log); ``stop`` prints ``summary``. The loop also ends by itself after ``--max-seconds``.
    """

    script: str
    name: str
    records: tuple[str, ...]
    interval: float
    run: Callable[[argparse.Namespace], int]
    ready: Callable[[argparse.Namespace], bool]
    summary: Callable[[argparse.Namespace], dict[str, Any]]
    ready_timeout: float = 120.0
    stop_timeout: float = 60.0

    def path(self, args: argparse.Namespace, suffix: str) -> Path:
        return Path(args.dir) / f"{self.name}-{args.label}{suffix}"

    def main(self, description: str) -> int:
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("command", choices=("start", "stop", "run"))
        parser.add_argument("--fleet", help="fleet.json")
        parser.add_argument("--dir", required=True, help="where the PID file, log and records go")
        parser.add_argument("--label", default="main")
        parser.add_argument("--sets", type=lambda text: text.split(","), help="replica sets (default: all)")
        parser.add_argument("--interval", type=float, default=self.interval, help="seconds between rounds")
        parser.add_argument("--max-seconds", type=float, default=3600.0, help="the loop ends by itself after this")
        args = parser.parse_args()
        if args.command in ("start", "run") and not args.fleet:
            parser.error(f"{args.command}: --fleet is required")
        return {"start": self._start, "stop": self._stop, "run": self.run}[args.command](args)

    def _start(self, args: argparse.Namespace) -> int:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        for suffix in self.records:
            self.path(args, suffix).unlink(missing_ok=True)
        argv = [sys.executable, str(Path(self.script).resolve()), "run", f"--fleet={args.fleet}", f"--dir={args.dir}"]
        argv += [f"--label={args.label}", f"--interval={args.interval}", f"--max-seconds={args.max_seconds}"]
        if args.sets:
            argv.append(f"--sets={','.join(args.sets)}")
        pid_file, log = self.path(args, ".pid"), self.path(args, ".log")
        process = start_background(argv, pid_file, log)

        def started() -> bool:
            # the parent asks its child directly: /proc/<pid>/cmdline can be empty while it execs
            if process.poll() is not None:
                raise SystemExit(f"the {self.name} exited early: {log.read_text(errors='replace')[-2000:]}")
            return self.ready(args)

        try:
            wait_for(started, self.ready_timeout, f"the {self.name} to start", interval=0.2)
        except SystemExit:
            stop_background(pid_file, self.script)
            raise
        print(json.dumps({"pid": process.pid, "changed": True}))
        return 0

    def _stop(self, args: argparse.Namespace) -> int:
        stopped = stop_background(self.path(args, ".pid"), self.script, timeout=self.stop_timeout)
        print(json.dumps({"stopped": stopped, "changed": stopped, **self.summary(args)}, default=str))
        return 0
