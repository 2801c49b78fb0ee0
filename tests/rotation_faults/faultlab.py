# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault scenarios' fleet: bring-up, faults, snapshots and judgement, all from outside the collection.

The fleet is the Molecule rotation scenario's (molecule/shared create/prepare/converge with
molecule/rotation/inventory/fleet.py): kmip1, kmip2 and the sets ``cfg`` (configsvr, mongo1-3)
and ``rs1`` (shardsvr, mongo4-6), podman containers running systemd and the PSMDB emulator, on
127.0.15.0/24 with containers ``kmipops-flt-*``. As in every test fleet, both PyKMIP servers share
one database (create.yml; KMIPOPS_TEST_KMS_SHARED_DIR says where), like a clustered KMS, so that a
member whose first serverName is dead really fails over to the second one.

Snapshots write the same files as molecule/rotation/snapshot.yml (``members-``, ``kms-``,
``replset-<label>.json``) so that molecule/shared/files/fleet_check.py judges them, but through
one ``podman exec`` per host in parallel instead of an ansible-playbook run (seconds instead of
tens of seconds per snapshot). The KMS objects are read from kmip1's copy of the shared database
only (kmip2 holds the same file: listing both would count every key twice).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / "molecule" / "shared"
TOOLS = SHARED / "files"
INVENTORY = [SHARED / "inventory" / "hosts.yml", REPO_ROOT / "molecule" / "rotation" / "inventory" / "fleet.py"]
NET = os.environ.get("KMIPOPS_FAULTS_NET", "127.0.15")
PREFIX = os.environ.get("KMIPOPS_FAULTS_PREFIX", "kmipops-flt-")
FLEET_SPEC = "cfg:configsvr,rs1:shardsvr"
SETS = {"cfg": ["mongo1", "mongo2", "mongo3"], "rs1": ["mongo4", "mongo5", "mongo6"]}
KMIP_HOSTS = ["kmip1", "kmip2"]
# The collection's fleet playbook and how the scenarios call it (KMIPOPS_FAULTS_ROTATION_ARGS adds
# arguments, e.g. the role's connection variables if the inventory's are not enough).
ROTATION_PLAYBOOK = os.environ.get("KMIPOPS_FAULTS_ROTATION_PLAYBOOK", "playbooks/rotate_master_key.yml")
# The catch-up deadline is lowered from the role's 600 s: with mongod.service Type=simple (the
# images', like many PSMDB fleets'), `systemctl start` succeeds although a mongod that cannot
# reach any KMS exits at once, and the role then waits the whole deadline for it, twice (its
# work, then its recovery). The lag allowed is raised from 10 s: on a 2-core machine at load 50
# the emulated secondaries lag 15 s behind, and the pre-flight would stop every scenario.
ROTATION_ARGS = shlex.split(
    os.environ.get(
        "KMIPOPS_FAULTS_ROTATION_ARGS",
        "--extra-vars=kmip_rotation_catch_up_timeout=240 --extra-vars=kmip_rotation_max_lag_seconds=60",
    )
)
# How long one playbook run may take after its fault was injected. 900 s was not enough at load 45-65
# on the 2-core machine (2026-12-02: the re-run of "both KMS killed", six members, was killed in its
# wave 1 after 900 s, leaving its two members of that wave stopped).
RUN_TIMEOUT = float(os.environ.get("KMIPOPS_FAULTS_RUN_TIMEOUT", "2400"))
# mongod's log line of a completed rotation, as snapshot.yml reads it
SNAPSHOT_SCRIPT = r"""
import base64, json, os, re, subprocess
with open("/var/log/mongodb/mongod.log", encoding="utf-8", errors="replace") as log:
    rotations = [line.rstrip("\n") for line in log if re.search(r'"id": ?29111[,}]', line)]
show = subprocess.run(["systemctl", "show", "-p", "MainPID", "-p", "ActiveState", "-p", "ExecMainStartTimestamp",
                       "mongod.service"], capture_output=True, text=True).stdout
print(json.dumps({
    "storage_bson": base64.b64encode(open("/var/lib/mongodb/storage.bson", "rb").read()).decode(),
    "mongod_conf": open("/etc/mongod.conf", encoding="utf-8").read(),
    "rotation_log": rotations,
    "unit": dict(line.split("=", 1) for line in show.splitlines() if "=" in line),
    "dbpath": sorted(os.listdir("/var/lib/mongodb")),
}))
"""


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the fleet settles: keep the last error for the message
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


@dataclass
class Run:
    """One run of the fleet playbook: exit status, output, the role's JSON report, wall time."""

    rc: int
    output: str
    report: dict[str, Any] | None
    seconds: float
    log_file: Path

    @property
    def report_text(self) -> str:
        return json.dumps(self.report, default=str) if self.report is not None else ""

    def names(self, *words: str) -> bool:
        """Every word appears in the report (JSON), or, without one, in the playbook's output."""
        text = self.report_text or self.output
        return all(word in text for word in words)


class FaultFleet:
    """The hosts, the controller-side tools and the fleet playbook, for one pytest session."""

    def __init__(self, state_dir: Path, log_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.rotation_dir = state_dir / "rotation"
        self.env = {
            **os.environ,
            "KMIPOPS_TEST_PREFIX": PREFIX,
            "KMIPOPS_TEST_NET": NET,
            "KMIPOPS_TEST_STATE_DIR": str(state_dir),
            "KMIPOPS_TEST_FLEET": FLEET_SPEC,
            "KMIPOPS_TEST_KMS_SHARED_DIR": str(state_dir / "kms-db"),
            "ANSIBLE_FORKS": "10",
            "ANSIBLE_FORCE_COLOR": "0",
        }
        self.runs = 0
        self.tools_on_path()

    # -- plumbing -----------------------------------------------------------------------------------

    @staticmethod
    def tools_on_path() -> None:
        for extra in (TOOLS, REPO_ROOT / "tests"):
            if str(extra) not in sys.path:
                sys.path.insert(0, str(extra))

    def _command(self, path: str | Path, *args: str) -> list[str]:
        inventory = [f"--inventory={source}" for source in INVENTORY]
        # molecule/shared/env.sh: podman for this machine, the collection and test collections on the path
        command = ["bash", "-c", 'source "$0" && exec ansible-playbook "$@"', str(SHARED / "env.sh"), *inventory]
        return [*command, str(REPO_ROOT / path), *args]

    def playbook(self, path: str | Path, *args: str, label: str, check: bool = True) -> tuple[int, Path, float]:
        """Run one playbook to its end (output in the log directory): rc, log file, seconds."""
        self.runs += 1
        log_file = self.log_dir / f"{self.runs:02d}-{label}.log"
        started = time.monotonic()
        with log_file.open("wb") as output:
            result = subprocess.run(
                self._command(path, *args), env=self.env, stdout=output, stderr=subprocess.STDOUT, check=False
            )
        seconds = time.monotonic() - started
        log(f"{label}: rc {result.returncode} in {seconds:.1f} s ({log_file})")
        if check and result.returncode != 0:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
            raise AssertionError(f"{label}: {path} failed (rc {result.returncode}), log {log_file}:\n{tail}")
        return result.returncode, log_file, seconds

    @property
    def admin_password(self) -> str:
        return (self.state_dir / "admin-password").read_text().split()[0]

    @property
    def fleet_json(self) -> Path:
        return self.rotation_dir / "fleet.json"

    def tool(self, name: str, *args: str, check: bool = True, timeout: float = 600) -> dict[str, Any]:
        """Run molecule/shared/files/<name>.py (fleet_tool, fleet_writer, ...) and parse its JSON output."""
        env = {**self.env, "KMIPOPS_ADMIN_PASSWORD": self.admin_password}
        command = [sys.executable, str(TOOLS / f"{name}.py"), *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{name} {' '.join(args)}: rc {result.returncode}: {result.stderr or result.stdout}")
        try:
            return {"rc": result.returncode, **json.loads(result.stdout or "{}")}
        except ValueError:
            return {"rc": result.returncode, "stdout": result.stdout, "stderr": result.stderr}

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = ["bash", "-c", 'source "$0" && exec podman "$@"', str(REPO_ROOT / "tests/images/podman-env.sh")]
        result = subprocess.run([*command, *args], capture_output=True, text=True, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: rc {result.returncode}: {result.stderr}")
        return result

    def exec(self, host: str, *argv: str, check: bool = True, stdin: str | None = None) -> str:
        args = ["exec", "-i", PREFIX + host, *argv] if stdin is not None else ["exec", PREFIX + host, *argv]
        command = ["bash", "-c", 'source "$0" && exec podman "$@"', str(REPO_ROOT / "tests/images/podman-env.sh")]
        result = subprocess.run([*command, *args], input=stdin, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{host}: {' '.join(argv)}: rc {result.returncode}: {result.stderr}")
        return result.stdout

    # -- the fleet's life ---------------------------------------------------------------------------

    def bring_up(self) -> float:
        seconds = 0.0
        for step in ("create", "prepare", "converge"):
            seconds += self.playbook(f"molecule/shared/{step}.yml", label=step)[2]
        self.playbook("molecule/rotation/describe.yml", label="describe")
        self.wait_healthy()
        return seconds

    def destroy(self) -> None:
        self.stop_all_background()
        self.playbook("molecule/rotation/destroy.yml", label="destroy", check=False)

    def wait_healthy(self, timeout: float = 240) -> None:
        self.tool("fleet_tool", "wait-healthy", f"--fleet={self.fleet_json}", f"--timeout={timeout}")

    def roles(self) -> dict[str, Any]:
        return self.tool("fleet_tool", "roles", f"--fleet={self.fleet_json}", "--timeout=60")

    # -- background writer and sampler ---------------------------------------------------------------

    def start_background(self, label: str) -> None:
        for name in ("sampler", "writer"):
            self.tool(
                f"fleet_{name}", "start", f"--fleet={self.fleet_json}", f"--dir={self.rotation_dir}", f"--label={label}"
            )
        self._background_label = label

    def stop_all_background(self) -> None:
        """Stop every writer and sampler that a failed scenario left running (by their PID files)."""
        for pid_file in sorted(self.rotation_dir.glob("*.pid")):
            name, _, label = pid_file.stem.partition("-")
            if name in ("writer", "sampler"):
                self.tool(f"fleet_{name}", "stop", f"--dir={self.rotation_dir}", f"--label={label}", check=False)
        self._background_label = None

    def stop_background(self) -> dict[str, Any]:
        label = getattr(self, "_background_label", None)
        if not label:
            return {}
        summary = {
            name: self.tool(f"fleet_{name}", "stop", f"--dir={self.rotation_dir}", f"--label={label}", check=False)
            for name in ("writer", "sampler")
        }
        self._background_label = None
        return summary

    # -- snapshots and judgement ---------------------------------------------------------------------

    def members_state(self) -> dict[str, dict[str, Any]]:
        """Per member: storage.bson, mongod.conf, 29111 lines, the unit's MainPID/state, the dbPath listing."""
        hosts = [h for members in SETS.values() for h in members]
        with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
            outputs = pool.map(lambda h: self.exec(h, "/usr/bin/python3", "-", stdin=SNAPSHOT_SCRIPT), hosts)
            return {host: json.loads(out) for host, out in zip(hosts, outputs, strict=True)}

    def snapshot(self, label: str) -> dict[str, dict[str, Any]]:
        members = self.members_state()
        (self.rotation_dir / f"members-{label}.json").write_text(json.dumps(members, indent=2))
        script = (TOOLS / "kms_objects.py").read_text()
        kms = json.loads(self.exec("kmip1", "/opt/pykmip/venv/bin/python", "-", stdin=script))
        (self.rotation_dir / f"kms-{label}.json").write_text(json.dumps({"kmip1": kms}, indent=2))
        out = self.rotation_dir / f"replset-{label}.json"
        self.tool("fleet_tool", "snapshot", f"--fleet={self.fleet_json}", f"--out={out}")
        return members

    def check(self, before: str, after: str, label: str, checks: list[str], **options: Any) -> dict[str, Any]:
        """fleet_check.py on two snapshots and a writer/sampler run; its report (``ok`` per check)."""
        args = [f"--fleet={self.fleet_json}", f"--dir={self.rotation_dir}", f"--before={before}", f"--after={after}"]
        args += [f"--writer={label}", f"--sampler={label}", f"--checks={','.join(checks)}"]
        args += [f"--report={self.rotation_dir}/report-{label}.json"]
        args += [f"--{key.replace('_', '-')}={value}" for key, value in options.items() if value is not True]
        args += [f"--{key.replace('_', '-')}" for key, value in options.items() if value is True]
        result = self.tool("fleet_check", *args, check=False)
        return result

    # -- the fleet playbook ---------------------------------------------------------------------------

    def rotation_command(self, label: str, *extra: str) -> tuple[list[str], Path]:
        report = self.rotation_dir / f"role-report-{label}.json"
        report.unlink(missing_ok=True)
        args = [f"--extra-vars=kmip_rotation_report_path={report}", *ROTATION_ARGS, *extra]
        return self._command(ROTATION_PLAYBOOK, *args), report

    @contextlib.contextmanager
    def rotation(self, label: str, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
        """The fleet playbook started in the background; the caller injects faults while it runs."""
        command, _report = self.rotation_command(label, *extra)
        self.runs += 1
        log_file = self.log_dir / f"{self.runs:02d}-rotate-{label}.log"
        with log_file.open("wb") as output:
            process = subprocess.Popen(command, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        self._current = (label, log_file, time.monotonic())
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(30)

    def finish(self, process: subprocess.Popen[bytes], timeout: float = RUN_TIMEOUT) -> Run:
        label, log_file, started = self._current
        try:
            rc = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"the rotation {label} did not end within {timeout} s ({log_file})") from None
        seconds = time.monotonic() - started
        report_file = self.rotation_dir / f"role-report-{label}.json"
        report = json.loads(report_file.read_text()) if report_file.exists() else None
        log(f"rotate-{label}: rc {rc} in {seconds:.1f} s, report {'written' if report else 'absent'} ({log_file})")
        return Run(rc, log_file.read_text(errors="replace"), report, seconds, log_file)

    def rotate(self, label: str, *extra: str) -> Run:
        with self.rotation(label, *extra) as process:
            return self.finish(process)

    # -- faults --------------------------------------------------------------------------------------

    def kill_kms(self, host: str) -> None:
        """The KMS host dies: its container is killed (the server and its port go at once)."""
        self.podman("kill", PREFIX + host)
        log(f"killed {host}")

    def start_kms(self, host: str) -> None:
        self.podman("start", PREFIX + host)
        address = self.address(host)
        poll(lambda: self._port_open(address, 5696), 120, f"{host}'s KMIP port")
        log(f"{host} is back")

    def address(self, host: str) -> str:
        fleet = json.loads(self.fleet_json.read_text())
        return {**fleet["addresses"], **fleet.get("kmip_addresses", {})}[host]

    @staticmethod
    def _port_open(address: str, port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
            return True
        return False

    def member_down(self, hosts: list[str]) -> str | None:
        """The first of ``hosts`` whose mongod no longer answers (port closed): it is being worked on."""
        for host in hosts:
            if not self._port_open(self.address(host), 27017):
                return host
        return None

    def wait_first_member_down(self, process: subprocess.Popen[bytes], timeout: float = 1200) -> str:
        def down() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"the rotation ended (rc {process.returncode}) before any member went down")
            return self.member_down([h for members in SETS.values() for h in members])

        return poll(down, timeout, "a member to go down for its rotation", interval=0.1)

    def start_member(self, host: str) -> None:
        """The operator's recovery of a member left down: start mongod through systemd."""
        self.exec(host, "systemctl", "reset-failed", "mongod.service", check=False)
        self.exec(host, "systemctl", "start", "mongod.service")

    def step_down(self, host: str, seconds: int = 60) -> None:
        """The operator's replSetStepDown on ``host`` (its primary), as a DBA would run it in mongosh."""
        import fleet_lib
        from pymongo.errors import AutoReconnect

        fleet = fleet_lib.Fleet.load(self.fleet_json)
        fleet.install_resolver()
        os.environ.setdefault("KMIPOPS_ADMIN_PASSWORD", self.admin_password)
        with fleet_lib.member_client(fleet, fleet.member(host)) as client, contextlib.suppress(AutoReconnect):
            client.admin.command("replSetStepDown", seconds, secondaryCatchUpPeriodSecs=10)
        log(f"{host} stepped down (replSetStepDown {seconds})")

    def set_priorities(self, replset: str, priorities: dict[str, float]) -> None:
        """rs.reconfig() with new member priorities (host -> priority), from the set's primary."""
        import fleet_lib

        fleet = fleet_lib.Fleet.load(self.fleet_json)
        fleet.install_resolver()
        os.environ.setdefault("KMIPOPS_ADMIN_PASSWORD", self.admin_password)
        with fleet_lib.set_client(fleet, replset) as client:
            config = client.admin.command("replSetGetConfig")["config"]
            for member in config["members"]:
                host = member["host"].rsplit(":", 1)[0]
                if host in priorities:
                    member["priority"] = priorities[host]
            config["version"] += 1
            client.admin.command("replSetReconfig", config)


def storage_key_id(member: dict[str, Any]) -> str | None:
    import bson

    metadata = bson.decode(base64.b64decode(member["storage_bson"]))
    return metadata.get("storage", {}).get("options", {}).get("encryption", {}).get("kmip", {}).get("keyId")


def untouched(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why a member is not as it was (key, mongod process, config), empty when untouched."""
    problems = []
    if storage_key_id(before) != storage_key_id(after):
        problems.append(f"key {storage_key_id(before)} -> {storage_key_id(after)}")
    if before["unit"].get("MainPID") != after["unit"].get("MainPID"):
        problems.append(f"mongod restarted (MainPID {before['unit'].get('MainPID')} -> {after['unit'].get('MainPID')})")
    if before["mongod_conf"] != after["mongod_conf"]:
        problems.append("mongod.conf changed")
    return problems
