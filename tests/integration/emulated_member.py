# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Emulated mongod members owned by a real service user, for the rotation module tests.

- ``ServiceAccount``: a system user and group the tests create (``kmipops-rot``, comment
  ``kmipops.psmdb integration tests``) and remove at the end of the session; a leftover of a
  killed session (same comment) is reused and removed too, any other user of that name is an
  error. Creating users needs root, which these machines are.
- ``EmulatorRuntime``: a world-readable directory with a copy of the PSMDB emulator and a
  ``bin/mongod`` wrapper, like the test images' ``/usr/bin/mongod``. The venv's Python lives under
  /root (mode 0700) here, which the service user cannot execute: the wrapper then runs the
  system Python of the same minor version with copies of the few libraries the emulator imports.
- ``EmulatedMember``: a member as a host has it - ``mongod.conf`` (owned by the service user,
  0600, it may hold a password), dbPath and log directory owned by the service user, the KMIP
  CA and client PEM copied for it, a Percona-style EnvironmentFile. Its mongod runs as the
  service user, so the tests' own starts never leave root-owned files either.

Addresses: members bind ``<net>.50``-``<net>.59`` of the integration network (conftest.py); only
the members that serve (``serve=True``) bind at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson

REPO = Path(__file__).resolve().parents[2]
EMULATOR = REPO / "tests" / "psmdb_emulator"
if str(EMULATOR) not in sys.path:
    sys.path.insert(0, str(EMULATOR))  # its package, not the tests/psmdb_emulator directory

from psmdb_emulator.lab import kmip_object_count  # noqa: E402

__all__ = ["kmip_object_count"]
ACCOUNT = "kmipops-rot"
ACCOUNT_COMMENT = "kmipops.psmdb integration tests"
#: what the emulator imports besides the standard library (mongod's core, without the KMIP server)
EMULATOR_LIBRARIES = ("kmip", "cryptography", "cffi", "_cffi_backend", "bson", "six", "typing_extensions")
DEADLINE = 300.0  # the shared machine is slow at times: generous, and always polled


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    uid: int
    gid: int


@contextlib.contextmanager
def service_account() -> Iterator[ServiceAccount]:
    """The test service user, created now and removed afterwards."""
    try:
        entry = pwd.getpwnam(ACCOUNT)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_gecos != ACCOUNT_COMMENT:
        raise RuntimeError(f"user {ACCOUNT} exists and is not ours ({entry.pw_gecos!r}); remove it or rename ACCOUNT")
    if entry is None:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                ACCOUNT_COMMENT,
                ACCOUNT,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(ACCOUNT)
    try:
        yield ServiceAccount(ACCOUNT, entry.pw_uid, entry.pw_gid)
    finally:
        subprocess.run(["userdel", ACCOUNT], check=False, capture_output=True)
        subprocess.run(["groupdel", ACCOUNT], check=False, capture_output=True)


def run_as(account: ServiceAccount, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, user=account.uid, group=account.gid, extra_groups=[], text=True, capture_output=True, **kwargs
    )


def _runs(account: ServiceAccount, argv: list[str]) -> bool:
    try:
        return run_as(account, argv, cwd="/", timeout=DEADLINE).returncode == 0
    except PermissionError:  # the interpreter itself is out of the user's reach
        return False


@dataclass
class EmulatorRuntime:
    root: Path
    python: str
    mongod: Path

    @classmethod
    def build(cls, account: ServiceAccount) -> EmulatorRuntime:
        root = Path(tempfile.mkdtemp(prefix="kmipops-rotlab-"))
        root.chmod(0o755)
        emulator = root / "emulator"
        for part in ("bin", "psmdb_emulator"):
            shutil.copytree(EMULATOR / part, emulator / part, ignore=shutil.ignore_patterns("__pycache__"))
        check = "import cryptography, bson; import kmip.core.enums"
        python, site = sys.executable, None
        if not _runs(account, [python, "-c", check]):
            python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
            site = root / "site"
            site.mkdir()
            for name in EMULATOR_LIBRARIES:
                spec = importlib.util.find_spec(name)
                if spec is None:
                    continue
                if spec.submodule_search_locations:
                    source = Path(next(iter(spec.submodule_search_locations)))
                    shutil.copytree(source, site / source.name, ignore=shutil.ignore_patterns("__pycache__"))
                elif spec.origin:
                    shutil.copy2(spec.origin, site / Path(spec.origin).name)
        wrapper = root / "bin" / "mongod"
        wrapper.parent.mkdir()
        lines = [
            "#!/bin/sh",
            "# the test runtime's mongod: the PSMDB emulator, as /usr/bin/mongod of the test images",
            f"PSMDB_EMULATOR_HOME={emulator}",
            f"PSMDB_EMULATOR_PYTHON={python}",
            "export PSMDB_EMULATOR_HOME PSMDB_EMULATOR_PYTHON",
        ]
        if site is not None:
            lines += [f"PYTHONPATH={site}", "export PYTHONPATH"]
        lines.append('exec "$PSMDB_EMULATOR_PYTHON" "$PSMDB_EMULATOR_HOME/bin/mongod" "$@"')
        wrapper.write_text("\n".join(lines) + "\n")
        wrapper.chmod(0o755)
        # compiled once here: the service user cannot write __pycache__ into this root-owned tree
        subprocess.run([python, "-m", "compileall", "-q", str(root)], check=False, capture_output=True)
        subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
        version = run_as(account, [str(wrapper), "--version"], cwd="/", timeout=DEADLINE)
        if version.returncode != 0:
            raise RuntimeError(f"the emulator does not run as {account.name}: {version.stderr[-2000:]}")
        return cls(root, python, wrapper)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Kmip:
    """The KMIP settings a member's config gets (files are copied for the service user)."""

    servers: list[str]
    port: int
    ca_file: Path
    client_pem: Path
    password: str | None = None


def alive(pid: int) -> bool:
    """A live process (a zombie waiting for a parent that does not reap is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


@dataclass
class MongodProcess:
    """A mongod the test started: the process itself, or the forked child of ``fork: true``."""

    process: subprocess.Popen[bytes]
    pid: int

    def stop(self) -> None:
        if alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        self.process.wait(timeout=DEADLINE)
        deadline = time.monotonic() + DEADLINE
        while alive(self.pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"mongod {self.pid} still runs {DEADLINE} s after SIGTERM")
            time.sleep(0.05)


@dataclass
class EmulatedMember:
    root: Path
    account: ServiceAccount
    runtime: EmulatorRuntime
    kmip: Kmip
    address: str
    port: int = 27017
    fork: bool = False
    key_identifier: str | None = None
    rotate_master_key: bool = False
    log_append: bool = True
    environment: dict[str, str] = field(default_factory=dict)
    processes: list[MongodProcess] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "mongod.conf"

    @property
    def db_path(self) -> Path:
        return self.root / "db"

    @property
    def log_path(self) -> Path:
        return self.root / "log" / "mongod.log"

    @property
    def environment_file(self) -> Path:
        return self.root / "mongod.env"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "mongod.pid"

    def create(self) -> EmulatedMember:
        self.root.mkdir(mode=0o755, parents=True)
        for name in ("db", "log", "run", "kmip"):
            directory = self.root / name
            directory.mkdir(mode=0o750)
            os.chown(directory, self.account.uid, self.account.gid)
        for source, name in ((self.kmip.ca_file, "ca.pem"), (self.kmip.client_pem, "client.pem")):
            target = self.root / "kmip" / name
            shutil.copyfile(source, target)
            os.chown(target, self.account.uid, self.account.gid)
            target.chmod(0o600)
        self.write_config()
        self.write_environment_file()
        return self

    def write_config(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        kmip = {
            "serverName": ",".join(self.kmip.servers),
            "port": self.kmip.port,
            "serverCAFile": str(self.root / "kmip" / "ca.pem"),
            "clientCertificateFile": str(self.root / "kmip" / "client.pem"),
            # the shared machine can be slow enough to break mongod's 5 s default
            "connectTimeoutMS": 60000,
        }
        if self.kmip.password:
            kmip["clientCertificatePassword"] = self.kmip.password
        if self.key_identifier:
            kmip["keyIdentifier"] = self.key_identifier
        if self.rotate_master_key:
            kmip["rotateMasterKey"] = True
        process = {"fork": True, "pidFilePath": str(self.pid_file)} if self.fork else {}
        document = {
            "storage": {"dbPath": str(self.db_path)},
            "systemLog": {"destination": "file", "path": str(self.log_path), "logAppend": self.log_append},
            "net": {"port": self.port, "bindIp": self.address},
            "processManagement": process,
            "security": {"enableEncryption": True, "kmip": kmip},
        }
        if not process:
            del document["processManagement"]
        # JSON is YAML: mongod.conf as a config management tool would render it
        self.config.write_text("# emulated member of the rotation tests\n" + _yaml(document))
        os.chown(self.config, self.account.uid, self.account.gid)
        self.config.chmod(0o600)

    def write_environment_file(self, **variables: str) -> None:
        """A Percona-style EnvironmentFile: OPTIONS names the config; test switches as variables."""
        self.environment.update(variables)
        lines = ["# /etc/default/mongod of the emulated member", f'OPTIONS="-f {self.config}"']
        lines += [f"{name}={value}" for name, value in self.environment.items()]
        self.environment_file.write_text("\n".join(lines) + "\n")
        self.environment_file.chmod(0o644)

    # -- mongod ---------------------------------------------------------------------------------

    def start(self, *args: str, serve: bool = False, env: dict[str, str] | None = None) -> MongodProcess:
        """mongod -f <config> as the service user; returns once it listens (23016)."""
        offset = self.log_size()
        environment = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PSMDB_EMULATOR_NO_SERVER": "0" if serve else "1",
            **(env or {}),
        }
        process = subprocess.Popen(
            [str(self.runtime.mongod), "-f", str(self.config), *args],
            user=self.account.uid,
            group=self.account.gid,
            extra_groups=[],
            cwd="/",
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            exited = process.poll()
            entries = self.log_entries(offset)
            listening = [e for e in entries if e["id"] == 23016]
            if listening:
                # fork: true - the parent has gone or goes; the child is the one of the start line
                pid = next(e["attr"]["pid"] for e in entries if e["id"] == 4615611)
                running = MongodProcess(process, pid)
                self.processes.append(running)
                return running
            if exited is not None and (exited != 0 or not self.fork):
                raise AssertionError(f"mongod exited {exited} instead of starting:\n{self.log_tail()}")
            time.sleep(0.1)
        process.kill()
        raise AssertionError(f"mongod did not listen within {DEADLINE} s:\n{self.log_tail()}")

    def stop_all(self) -> None:
        for running in self.processes:
            running.stop()
        self.processes.clear()

    def start_fails(self) -> tuple[int, list[dict[str, Any]]]:
        """A normal start that must fail: its exit code and its log entries."""
        offset = self.log_size()
        completed = run_as(
            self.account,
            [str(self.runtime.mongod), "-f", str(self.config)],
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "PSMDB_EMULATOR_NO_SERVER": "1"},
            timeout=DEADLINE,
        )
        return completed.returncode, self.log_entries(offset)

    def started_key(self) -> str:
        """Start normally, check the key it read or created, stop: proves the member starts."""
        offset = self.log_size()
        running = self.start()
        running.stop()
        self.processes.remove(running)
        entries = self.log_entries(offset)
        keys = [e["attr"]["keyIdentifier"]["kmipKeyIdentifier"] for e in entries if e["id"] in (29115, 29116)]
        assert keys, self.log_tail()
        exit_codes = [e["attr"]["exitCode"] for e in entries if e["id"] == 23138]
        assert exit_codes == [0], self.log_tail()
        return keys[-1]

    # -- inspection -----------------------------------------------------------------------------

    def storage_key_id(self) -> str | None:
        document = bson.decode((self.db_path / "storage.bson").read_bytes())
        return document["storage"]["options"]["encryption"]["kmip"]["keyId"]

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_entries(self, offset: int = 0) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        with open(self.log_path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
        entries = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:]) if self.log_path.exists() else ""

    def fingerprint(self) -> dict[str, str]:
        """sha256 of every file of the dbPath, the log directory, the config and the env file."""
        result: dict[str, str] = {}
        for top in (self.db_path, self.log_path.parent):
            for path in sorted(top.rglob("*")):
                if path.is_file():
                    result[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
                elif path.is_dir():
                    result[str(path)] = "dir"
        for path in (self.config, self.environment_file):
            result[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return result

    def foreign_files(self) -> list[str]:
        """Files of the dbPath and log directory the service user does not own (root's, say)."""
        found = []
        for top in (self.db_path, self.log_path.parent):
            for path in [top, *top.rglob("*")]:
                if path.lstat().st_uid != self.account.uid:
                    found.append(f"{path} (uid {path.lstat().st_uid})")
        return found


def _yaml(document: dict[str, Any], indent: int = 0) -> str:
    lines = []
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(_yaml(value, indent + 2).rstrip("\n"))
        else:
            lines.append(" " * indent + f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"
