# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet scaling of a master key rotation (issue 11): T(N)/T(1) of a waves playbook vs a naive one.

The fleet is the Molecule rotation scenario's, at a bigger size: two PyKMIP servers and the
largest N of ``--sets`` replica sets of three PSMDB-emulator members, each host a podman
container with systemd (molecule/shared create/prepare/converge, molecule/rotation/inventory/
fleet.py with KMIPOPS_TEST_FLEET=rs1,...,rsN), on 127.0.13.0/24, containers kmipops-bench-*.
It is brought up once; then, for each N, both arms rotate the first N sets of the same fleet,
one after the other (which arm goes first alternates with N), each timed as the wall time of
its ansible-playbook run, the fleet healthy again before the next run (fleet_tool.py
wait-healthy, not timed); an unmeasured warm-up rotation of the first set comes first.
Printed: T per arm and N, T(N)/T(1) per arm, and waves/naive per N.

- ``--waves``: the playbook that rotates the sets in waves (the collection's
  playbooks/rotate_master_key.yml once it exists); ``--waves-args``: its arguments, where
  ``{hosts}`` becomes the host pattern of the first N sets (``replset_rs1:replset_rs2``).
- ``--naive``: a ``serial: 1`` play over the same hosts; default the by-hand
  molecule/rotation/manual_rotation.yml (secondaries one at a time, then each primary).

Until the collection has its rotation playbook, both arms default to the by-hand playbook: that
run proves the plumbing, not the waves. Goal of issue 11: waves T(4)/T(1) <= 1.5; naive grows
with N. Needs root and podman (like `make molecule`); take the Molecule lock:

    flock /tmp/kmipops-lock-molecule .venv/bin/python bench/bench_rotation_fleet.py --sets 1,2,4
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

from _common import REPO_ROOT, header, write_results

NET = "127.0.13"
PREFIX = "kmipops-bench-"
MANUAL = "molecule/rotation/manual_rotation.yml"
MANUAL_ARGS = "-e kmipops_manual_hosts={hosts}"
SHARED = REPO_ROOT / "molecule" / "shared"
INVENTORY = [SHARED / "inventory" / "hosts.yml", REPO_ROOT / "molecule" / "rotation" / "inventory" / "fleet.py"]
TOOLS = SHARED / "files"
# the same for every run, so that the arms differ only in their playbook
FORKS = 16


class Fleet:
    """The benchmark's hosts: the shared playbooks run with this fleet's environment."""

    def __init__(self, sets: int, state_dir: Path, log_dir: Path) -> None:
        self.names = [f"rs{index}" for index in range(1, sets + 1)]
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "KMIPOPS_TEST_PREFIX": PREFIX,
            "KMIPOPS_TEST_NET": NET,
            "KMIPOPS_TEST_STATE_DIR": str(state_dir),
            "KMIPOPS_TEST_FLEET": ",".join(self.names),
            "ANSIBLE_FORKS": str(FORKS),
            "ANSIBLE_FORCE_COLOR": "0",
        }
        self.runs = 0

    def playbook(self, path: str | Path, *args: str, label: str) -> float:
        """Run one playbook (output to the log directory); its wall time in seconds."""
        self.runs += 1
        log = self.log_dir / f"{self.runs:02d}-{label}.log"
        inventory = [f"--inventory={source}" for source in INVENTORY]
        # molecule/shared/env.sh: podman for this machine, the collection and test collections on the path
        command = ["bash", "-c", 'source "$0" && exec ansible-playbook "$@"', str(SHARED / "env.sh"), *inventory]
        command += [str(REPO_ROOT / path), *args]
        started = time.monotonic()
        with log.open("wb") as output:
            result = subprocess.run(command, env=self.env, stdout=output, stderr=subprocess.STDOUT, check=False)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            raise SystemExit(f"{label}: {path} failed (rc {result.returncode}), log {log}:\n" + "\n".join(tail))
        print(f"  {label}: {seconds:.1f} s", flush=True)
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


def arm_args(template: str, hosts: str) -> list[str]:
    return shlex.split(template.replace("{hosts}", hosts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="1,2,4", help="the N to measure, comma-separated (default 1,2,4)")
    parser.add_argument("--waves", default=MANUAL, help="the waves arm's playbook (repository-relative)")
    parser.add_argument("--waves-args", default=MANUAL_ARGS, help="its arguments; {hosts} = the sets' host pattern")
    parser.add_argument("--naive", default=MANUAL, help="the naive serial: 1 arm's playbook")
    parser.add_argument("--naive-args", default=MANUAL_ARGS, help="its arguments; {hosts} as above")
    parser.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="skip the unmeasured first rotation (of the first set, naive arm) that absorbs first-run costs",
    )
    parser.add_argument("--keep", action="store_true", help="leave the fleet up (remove it with --destroy-only)")
    parser.add_argument("--destroy-only", action="store_true", help="only remove a fleet left by --keep")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.sets.split(",")})
    if counts[0] < 1 or counts[-1] > 8:
        parser.error("--sets: between 1 and 8 replica sets")

    state_dir = Path(tempfile.mkdtemp(prefix="bench-rotation-"))
    log_dir = REPO_ROOT / ".build" / "bench-rotation-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(counts[-1], state_dir, log_dir)
    if args.destroy_only:
        fleet.playbook("molecule/rotation/destroy.yml", label="destroy")
        return 0
    lines = header(f"rotation fleet scaling: {len(fleet.names)} replica sets x 3 members, podman containers")
    lines.append(f"waves arm: {args.waves} {args.waves_args}")
    lines.append(f"naive arm: {args.naive} {args.naive_args}")
    if args.waves == args.naive and args.waves_args == args.naive_args:
        lines.append("(both arms run the same playbook: this run proves the plumbing, not the waves)")
    times: dict[str, dict[int, float]] = {"waves": {}, "naive": {}}
    try:
        print(f"bringing up {len(fleet.names)} sets ({state_dir}, logs in {log_dir})", flush=True)
        bring_up = sum(
            fleet.playbook(f"molecule/shared/{step}.yml", label=step) for step in ("create", "prepare", "converge")
        )
        fleet.playbook("molecule/rotation/describe.yml", label="describe")
        fleet.tool("wait-healthy", "--timeout=300")
        lines.append(f"bring-up (create, prepare, converge): {bring_up:.0f} s")
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
                times[arm][count] = fleet.playbook(
                    playbook, *arm_args(template, fleet.hosts(count)), label=f"{arm}-N{count}"
                )
                fleet.tool("wait-healthy", f"--sets={','.join(fleet.names[:count])}", "--timeout=300")
    finally:
        if not args.keep:
            fleet.playbook("molecule/rotation/destroy.yml", label="destroy")

    base = counts[0]
    lines += [
        "",
        f"{'N':>3} {'T waves':>9} {'T naive':>9} {'waves T(N)/T(' + str(base) + ')':>18} "
        f"{'naive T(N)/T(' + str(base) + ')':>18} {'waves/naive':>12}",
    ]
    for count in counts:
        waves, naive = times["waves"][count], times["naive"][count]
        lines.append(
            f"{count:>3} {waves:>8.1f}s {naive:>8.1f}s {waves / times['waves'][base]:>18.2f} "
            f"{naive / times['naive'][base]:>18.2f} {waves / naive:>12.2f}"
        )
    write_results("bench_rotation_fleet", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
