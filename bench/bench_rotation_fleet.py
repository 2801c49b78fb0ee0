# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet scaling and per-member overhead of a master key rotation (issue 11): waves vs a naive serial: 1 play.

The fleet is the Molecule rotation scenario's, at a bigger size: two PyKMIP servers and the
largest N of ``--sets`` replica sets of three PSMDB-emulator members, each host a podman
container with systemd (molecule/shared create/prepare/converge, molecule/rotation/inventory/
fleet.py with KMIPOPS_TEST_FLEET=rs1,...,rsN), on 127.0.13.0/24, containers kmipops-bench-*.
It is brought up once; then, for each N, both arms rotate the first N sets of the same fleet,
one after the other (which arm goes first alternates with N), each timed as the wall time of
its ansible-playbook run, the fleet healthy again before the next run (fleet_tool.py
wait-healthy, not timed); an unmeasured warm-up rotation of the first set comes first.
Printed: T per arm and N, T(N)/T(1) per arm, and waves/naive per N.

- ``--waves``: the playbook that rotates the sets in waves, default the collection's
  playbooks/rotate_master_key.yml; ``--waves-args``: its arguments, where ``{hosts}`` becomes
  the host pattern of the first N sets (``replset_rs1:replset_rs2``) and ``{report}`` a JSON
  report path (kmip_rotation_report_path).
- ``--naive``: a ``serial: 1`` play over the same hosts; default the by-hand
  molecule/rotation/manual_rotation.yml (secondaries one at a time, then each primary).

Per-member overhead (``--overhead``, default on): after the scaling runs, in the same run, the
role's time per member (the ``durations`` its JSON report gives for each member of the first
set, from the waves run of N=1) minus the raw time of the same member rotated by hand by this
script, with no Ansible at all: ``systemctl stop``; one exec that removes keyIdentifier, runs
``mongod --kmipRotateMasterKey`` as the mongod user and writes the new id from log line 29111;
``systemctl start``; then polling (every 0.2 s) until the primary sees the member SECONDARY and
its lag <= 5 s. The primary is stepped down first (not counted in the raw time, as the role's
per-member time may not count it either: both are printed). Goal: <= 3 s.

Goal of issue 11: waves T(4)/T(1) <= 1.5; naive grows with N. Needs root and podman (like
`make molecule`); it has its own addresses and containers, take its lock:

    flock /tmp/kmipops-lock-bench .venv/bin/python bench/bench_rotation_fleet.py --sets 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, header, write_results

NET = "127.0.13"
PREFIX = "kmipops-bench-"
MANUAL = "molecule/rotation/manual_rotation.yml"
MANUAL_ARGS = "-e kmipops_manual_hosts={hosts}"
WAVES = "playbooks/rotate_master_key.yml"
# the hosts' venv is there (prepare.yml ran kmip_prereqs), as the naive arm assumes too
WAVES_ARGS = (
    "-e kmip_rotation_hosts={hosts} -e kmip_rotation_report_path={report} -e kmip_rotation_install_prereqs=false"
    " -e kmipops_python_interpreter=/opt/kmipops/venv/bin/python"
)
SHARED = REPO_ROOT / "molecule" / "shared"
INVENTORY = [SHARED / "inventory" / "hosts.yml", REPO_ROOT / "molecule" / "rotation" / "inventory" / "fleet.py"]
TOOLS = SHARED / "files"
# the same for every run, so that the arms differ only in their playbook
FORKS = 16


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat): a run's busy share is their difference."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class Fleet:
    """The benchmark's hosts: the shared playbooks run with this fleet's environment."""

    def __init__(
        self, sets: int, state_dir: Path, log_dir: Path, net: str = NET, prefix: str = PREFIX, spec: str = ""
    ) -> None:
        # spec: KMIPOPS_TEST_FLEET of a fleet brought up elsewhere (e.g. the fault scenarios' kept one)
        self.spec = spec or ",".join(f"rs{index}" for index in range(1, sets + 1))
        self.names = [entry.split(":")[0] for entry in self.spec.split(",")]
        self.prefix = prefix
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "KMIPOPS_TEST_PREFIX": prefix,
            "KMIPOPS_TEST_NET": net,
            "KMIPOPS_TEST_STATE_DIR": str(state_dir),
            "KMIPOPS_TEST_FLEET": self.spec,
            "ANSIBLE_FORKS": str(FORKS),
            "ANSIBLE_FORCE_COLOR": "0",
            # each task's time in the logs (same callback in both arms), to see where a run spends it
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
        }
        self.runs = 0
        #: label -> share of the machine's CPU time that was busy during that playbook run (0..1)
        self.cpu_busy: dict[str, float] = {}

    def playbook(self, path: str | Path, *args: str, label: str) -> float:
        """Run one playbook (output to the log directory); its wall time in seconds."""
        self.runs += 1
        log = self.log_dir / f"{self.runs:02d}-{label}.log"
        inventory = [f"--inventory={source}" for source in INVENTORY]
        # molecule/shared/env.sh: podman for this machine, the collection and test collections on the path
        command = ["bash", "-c", 'source "$0" && exec ansible-playbook "$@"', str(SHARED / "env.sh"), *inventory]
        command += [str(REPO_ROOT / path), *args]
        started, (busy_before, total_before) = time.monotonic(), cpu_ticks()
        with log.open("wb") as output:
            result = subprocess.run(command, env=self.env, stdout=output, stderr=subprocess.STDOUT, check=False)
        seconds = time.monotonic() - started
        busy_after, total_after = cpu_ticks()
        self.cpu_busy[label] = (busy_after - busy_before) / max(total_after - total_before, 1)
        if result.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            raise SystemExit(f"{label}: {path} failed (rc {result.returncode}), log {log}:\n" + "\n".join(tail))
        print(f"  {label}: {seconds:.1f} s, CPU busy {self.cpu_busy[label]:.0%}", flush=True)
        return seconds

    def tool(self, *args: str) -> dict[str, object]:
        env = {**self.env, "KMIPOPS_ADMIN_PASSWORD": (self.state_dir / "admin-password").read_text().split()[0]}
        fleet_json = self.state_dir / "rotation" / "fleet.json"
        command = [sys.executable, str(TOOLS / "fleet_tool.py"), args[0], f"--fleet={fleet_json}", *args[1:]]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"fleet_tool {' '.join(args)}: {result.stderr or result.stdout}")
        return json.loads(result.stdout)

    def hosts(self, count: int) -> str:
        return ":".join(f"replset_{name}" for name in self.names[:count])


def arm_args(template: str, hosts: str, report: Path | None = None) -> list[str]:
    return shlex.split(template.replace("{hosts}", hosts).replace("{report}", str(report or "/dev/null")))


# One exec on the member: what an operator types between `systemctl stop` and `systemctl start`
# (remove keyIdentifier, rotate as the mongod user, write the new id from log line 29111).
RAW_ROTATE = r"""
import json, re, subprocess
conf = open("/etc/mongod.conf", encoding="utf-8").read()
indent = re.search(r"\n( +)serverName:", conf).group(1)
conf = re.sub(r"\n +keyIdentifier:[^\n]*", "", conf)
open("/etc/mongod.conf", "w", encoding="utf-8").write(conf)
subprocess.run(["runuser", "-u", "mongod", "--", "/usr/bin/mongod", "--config", "/etc/mongod.conf",
                "--kmipRotateMasterKey"], check=True, stdout=subprocess.DEVNULL)
with open("/var/log/mongodb/mongod.log", encoding="utf-8", errors="replace") as log:
    line = [l for l in log if re.search(r'"id": ?29111[,}]', l)][-1]
new = json.loads(line)["attr"]["newKeyIdentifier"]["kmipKeyIdentifier"]
line = "\n" + indent + "keyIdentifier: '" + new + "'"
conf = re.sub(r"(\n +serverName:[^\n]*)", lambda m: m.group(1) + line, conf, count=1)
open("/etc/mongod.conf", "w", encoding="utf-8").write(conf)
print(new)
"""


class RawHands:
    """The raw by-hand rotation of one member, timed step by step, without Ansible."""

    def __init__(self, fleet: Fleet) -> None:
        sys.path.insert(0, str(TOOLS))
        import fleet_lib  # the harness's pymongo helpers (molecule/shared/files)

        self.lib = fleet_lib
        self.prefix = fleet.prefix
        os.environ["KMIPOPS_ADMIN_PASSWORD"] = (fleet.state_dir / "admin-password").read_text().split()[0]
        self.fleet = fleet_lib.Fleet.load(fleet.state_dir / "rotation" / "fleet.json")
        self.fleet.install_resolver()
        self.podman_env = [
            "bash",
            "-c",
            'source "$0" && exec podman "$@"',
            str(REPO_ROOT / "tests/images/podman-env.sh"),
        ]

    def _exec(self, host: str, *argv: str, stdin: str | None = None) -> str:
        command = [*self.podman_env, "exec", *(["-i"] if stdin else []), self.prefix + host, *argv]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True).stdout

    def _caught_up(self, host: str) -> bool:
        member = self.fleet.member(host)
        _primary, status = self.lib.find_primary(self.fleet, member.replset)
        entries = {m["name"]: m for m in status["members"]}
        entry = entries[member.name]
        primary = next(m for m in status["members"] if m["stateStr"] == "PRIMARY")
        lag = (primary["optimeDate"] - entry["optimeDate"]).total_seconds() if entry.get("optimeDate") else None
        return entry["stateStr"] == "SECONDARY" and entry.get("health") == 1 and lag is not None and lag <= 5

    def step_down(self, host: str) -> float:
        started = time.monotonic()
        member = self.fleet.member(host)
        with self.lib.member_client(self.fleet, member) as client:
            try:
                client.admin.command("replSetStepDown", 60, secondaryCatchUpPeriodSecs=10)
            except Exception as exc:  # the old primary may drop the connection
                if "primary" not in str(exc).lower():
                    raise
        self.lib.wait_for(
            lambda: self.lib.find_primary(self.fleet, member.replset)[0].host != host,
            120,
            f"a new primary of {member.replset}",
            interval=0.2,
        )
        return time.monotonic() - started

    def rotate(self, host: str) -> dict[str, float]:
        steps: dict[str, float] = {}
        mark = time.monotonic()
        self._exec(host, "systemctl", "stop", "mongod.service")
        steps["stop"], mark = time.monotonic() - mark, time.monotonic()
        self._exec(host, "/usr/bin/python3", "-", stdin=RAW_ROTATE)
        steps["rotate"], mark = time.monotonic() - mark, time.monotonic()
        self._exec(host, "systemctl", "start", "mongod.service")
        steps["start"], mark = time.monotonic() - mark, time.monotonic()
        self.lib.wait_for(lambda: self._caught_up(host), 300, f"{host} SECONDARY and caught up", interval=0.2)
        steps["catch_up"] = time.monotonic() - mark
        steps["total"] = sum(steps.values())
        return steps


STEPS = ("stop", "rotate", "start", "catch_up")


def role_member_seconds(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per member host, the role's times from its JSON report (kmip_rotation_report_path, mongod_fleet's shape).

    ``turn``: the member's whole turn (``members.<host>.seconds``: gate, a primary's step-down, the work,
    the check of the new key); ``stop``, ``rotate``, ``start``, ``catch_up`` and ``total`` (stop to caught
    up): kmip_rotation's ``details.seconds``. Members not ``done`` are left out; a ``done`` member without
    these figures is an error naming the field.
    """
    found: dict[str, dict[str, float]] = {}
    for host, entry in report["members"].items():
        if entry.get("status") != "done":
            continue
        seconds = entry["details"]["seconds"]
        figures = {"turn": entry["seconds"], **{step: seconds[step] for step in (*STEPS, "total")}}
        for name, value in figures.items():
            if not isinstance(value, int | float):
                raise ValueError(f"report member {host}: {name} is {value!r}, not a number")
        found[host] = {name: float(value) for name, value in figures.items()}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="1,2,4", help="the N to measure, comma-separated (default 1,2,4)")
    parser.add_argument("--waves", default=WAVES, help="the waves arm's playbook (repository-relative)")
    parser.add_argument("--waves-args", default=WAVES_ARGS, help="its arguments; {hosts}, {report} as above")
    parser.add_argument("--naive", default=MANUAL, help="the naive serial: 1 arm's playbook")
    parser.add_argument("--naive-args", default=MANUAL_ARGS, help="its arguments; {hosts} as above")
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="skip the unmeasured first rotation (of the first set, naive arm) that absorbs first-run costs",
    )
    parser.add_argument("--no-overhead", dest="overhead", action="store_false", help="skip the per-member overhead")
    parser.add_argument("--keep", action="store_true", help="leave the fleet up (remove it with --destroy-only)")
    parser.add_argument("--destroy-only", action="store_true", help="only remove a fleet left by --keep")
    parser.add_argument(
        "--state-dir", type=Path, help="the fleet's state directory; a fleet already up there (--keep) is reused"
    )
    parser.add_argument("--up-only", action="store_true", help="bring the fleet up, keep it, measure nothing")
    parser.add_argument("--net", default=NET, help="with --state-dir: the kept fleet's /24 (default %(default)s)")
    parser.add_argument("--prefix", default=PREFIX, help="with --state-dir: its container prefix")
    parser.add_argument("--fleet-spec", default="", help="with --state-dir: its KMIPOPS_TEST_FLEET (default rs1..rsN)")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.sets.split(",")})
    if counts[0] < 1 or counts[-1] > 8:
        parser.error("--sets: between 1 and 8 replica sets")

    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="bench-rotation-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    reuse = (state_dir / "rotation" / "fleet.json").exists()
    args.keep = args.keep or args.up_only
    log_dir = REPO_ROOT / ".build" / "bench-rotation-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(counts[-1], state_dir, log_dir, args.net, args.prefix, args.fleet_spec)
    if len(fleet.names) < counts[-1]:
        parser.error(f"--sets: the fleet has {len(fleet.names)} replica sets")
    if args.destroy_only:
        fleet.playbook("molecule/rotation/destroy.yml", label="destroy")
        return 0
    lines = header(f"rotation fleet scaling: {counts[-1]} replica sets x 3 members, podman containers")
    lines.append("fleet: podman containers (systemd, mongod.service) running the PSMDB emulator, 2 PyKMIP servers")
    lines.append(f"waves arm: {args.waves} {args.waves_args}")
    lines.append(f"naive arm: {args.naive} {args.naive_args}")
    if args.waves == args.naive and args.waves_args == args.naive_args:
        lines.append("(both arms run the same playbook: this run proves the plumbing, not the waves)")
    times: dict[str, dict[int, float]] = {"waves": {}, "naive": {}}
    reports: dict[int, Path] = {}
    overhead_lines: list[str] = []
    try:
        if reuse:
            print(f"reusing the fleet of {state_dir} (logs in {log_dir})", flush=True)
            lines.append("fleet reused from an earlier bring-up (--state-dir)")  # no path of this machine in results
        else:
            print(f"bringing up {len(fleet.names)} sets ({state_dir}, logs in {log_dir})", flush=True)
            bring_up = sum(
                fleet.playbook(f"molecule/shared/{step}.yml", label=step) for step in ("create", "prepare", "converge")
            )
            fleet.playbook("molecule/rotation/describe.yml", label="describe")
            lines.append(f"bring-up (create, prepare, converge): {bring_up:.0f} s")
        fleet.tool("wait-healthy", "--timeout=300")
        if args.up_only:
            print(f"fleet up; measure with --state-dir {state_dir}", flush=True)
            return 0
        arms = {"waves": (args.waves, args.waves_args), "naive": (args.naive, args.naive_args)}
        if args.warm_up:
            # the first rotation after bring-up is slower (seen: +40 %), whichever arm runs it
            warm_up = fleet.playbook(args.naive, *arm_args(args.naive_args, fleet.hosts(1)), label="warm-up")
            fleet.tool("wait-healthy", f"--sets={fleet.names[0]}", "--timeout=300")
            lines.append(f"warm-up rotation of one set (naive arm, not counted): {warm_up:.0f} s")
        for index, count in enumerate(counts):
            order = ["waves", "naive"] if index % 2 == 0 else ["naive", "waves"]
            for arm in order:
                playbook, template = arms[arm]
                report = state_dir / f"report-{arm}-N{count}.json"
                if arm == "waves":
                    reports[count] = report
                times[arm][count] = fleet.playbook(
                    playbook, *arm_args(template, fleet.hosts(count), report), label=f"{arm}-N{count}"
                )
                fleet.tool("wait-healthy", f"--sets={','.join(fleet.names[:count])}", "--timeout=300")
        if args.overhead:
            try:
                overhead_lines = measure_overhead(fleet, reports.get(counts[0]))
            except (Exception, SystemExit) as error:  # the scaling figures are written all the same
                overhead_lines = ["", f"per-member overhead not measured: {type(error).__name__}: {error}"]
    finally:
        if not args.keep:
            fleet.playbook("molecule/rotation/destroy.yml", label="destroy")

    base = counts[0]
    lines += [
        "",
        f"{'N':>3} {'T waves':>9} {'T naive':>9} {'waves T(N)/T(' + str(base) + ')':>18} "
        f"{'naive T(N)/T(' + str(base) + ')':>18} {'waves/naive':>12} {'CPU busy waves/naive':>21}",
    ]
    for count in counts:
        waves, naive = times["waves"][count], times["naive"][count]
        lines.append(
            f"{count:>3} {waves:>8.1f}s {naive:>8.1f}s {waves / times['waves'][base]:>18.2f} "
            f"{naive / times['naive'][base]:>18.2f} {waves / naive:>12.2f} "
            f"{fleet.cpu_busy[f'waves-N{count}']:>11.0%} / {fleet.cpu_busy[f'naive-N{count}']:.0%}"
        )
    lines.append(
        "CPU busy: the share of this machine's CPU time in use during the run - the Ansible controller, "
        "every member's emulated mongod and both PyKMIP servers share these cores; near 100 % the run is CPU-bound "
        "and parallel waves cannot go faster than the work they add."
    )
    lines += overhead_lines
    write_results("bench_rotation_fleet", lines)
    return 0


PROBE_TASKS = 10


def probe_playbook(path: Path, host: str, tasks: int) -> Path:
    """A play of ``tasks`` read-only module tasks of the collection on one member (mongod_encryption_info)."""
    task = {
        "name": "Read the member's key (read-only)",
        "kmipops.psmdb.mongod_encryption_info": {"config": "/etc/mongod.conf", "query_server": False},
    }
    play = {
        "name": f"{tasks} module tasks on {host}",
        "hosts": host,
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "/opt/kmipops/venv/bin/python"},
        "tasks": [task] * tasks,
    }
    path.write_text(json.dumps([play]))  # JSON is YAML
    return path


def task_cost(fleet: Fleet, host: str) -> float:
    """Seconds one module task of the collection costs on this connection (podman exec, no pipelining)."""
    with tempfile.TemporaryDirectory() as scratch:
        one = fleet.playbook(probe_playbook(Path(scratch) / "one.yml", host, 1), label="probe-1-task")
        many = fleet.playbook(
            probe_playbook(Path(scratch) / "many.yml", host, PROBE_TASKS + 1), label=f"probe-{PROBE_TASKS + 1}-tasks"
        )
    return (many - one) / PROBE_TASKS


def measure_overhead(fleet: Fleet, report_file: Path | None) -> list[str]:
    """The role's per-member times (its report, first set, waves run) against the raw by-hand ones, same members."""
    lines = ["", "per-member overhead, set " + fleet.names[0] + " (role's report vs raw by hand, same run):"]
    if report_file is None or not report_file.exists():
        return [*lines, f"  no role report at {report_file}: overhead not measured"]
    role = role_member_seconds(json.loads(report_file.read_text()))
    hands = RawHands(fleet)
    roles = fleet.tool("roles", f"--sets={fleet.names[0]}")
    members = [h for h, state in roles["members"].items() if state == "SECONDARY"]
    members += [h for h, state in roles["members"].items() if state == "PRIMARY"]
    cost = task_cost(fleet, members[0])
    lines.append(
        f"  one module task of the collection on this connection (podman exec, no pipelining): {cost:.2f} s "
        f"(a play of {PROBE_TASKS + 1} mongod_encryption_info tasks minus a play of 1, same member)"
    )
    lines.append(
        f"  {'member':<8} {'step':<9} {'role s':>7} {'raw s':>7} {'role-raw':>9}"
        "   (role: kmip_rotation's details.seconds; raw: this script, no Ansible)"
    )
    window, turn = [], []
    for host in members:
        step_down = hands.step_down(host) if roles["members"][host] == "PRIMARY" else 0.0
        raw = hands.rotate(host)
        if host not in role:
            lines.append(f"  {host:<8} (not done in the role's report)")
            continue
        for step in (*STEPS, "total"):
            lines.append(
                f"  {host:<8} {step:<9} {role[host][step]:>7.1f} {raw[step]:>7.1f} {role[host][step] - raw[step]:>9.1f}"
            )
        window.append(role[host]["total"] - raw["total"])
        turn.append(role[host]["turn"] - raw["total"] - step_down)
        lines.append(
            f"  {host:<8} {'turn':<9} {role[host]['turn']:>7.1f} {raw['total'] + step_down:>7.1f} {turn[-1]:>9.1f}"
            "   (the member's whole turn: gate, step-down, work, check of the new key; raw: work + step-down)"
        )
    fleet.tool("wait-healthy", f"--sets={fleet.names[0]}", "--timeout=300")
    if window:
        mean_window, mean_turn = sum(window) / len(window), sum(turn) / len(turn)
        lines += [
            f"  mean overhead per member, stop to caught up: {mean_window:.1f} s (goal <= 3 s): "
            f"{mean_window / cost:.1f} module tasks' worth at {cost:.2f} s each",
            f"  mean overhead per member, whole turn: {mean_turn:.1f} s ({mean_turn / cost:.1f} tasks' worth)",
        ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
