# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conversion to KMIP by rolling initial sync (issue 12): time per member against data size, fleet of 1 vs N sets.

The fleet is the Molecule encrypt-existing scenario's, at a bigger size: two PyKMIP servers and
plain (unencrypted) replica sets of three PSMDB-emulator members, each host a podman container
with systemd (molecule/shared create/prepare, molecule/encrypt-existing/converge.yml, which
starts the sets without encryption in renamable dbPaths and puts a few thousand documents in
each; molecule/rotation/inventory/fleet.py with KMIPOPS_TEST_FLEET), on 127.0.16.0/24,
containers kmipops-cbench-*. It is brought up once, with one set per data size (``size1``...)
and, for every N > 1 of ``--sets``, N more sets (``n4s1``...), all filled before any conversion.

- **Per member against data size**: each size set is filled with ``--sizes`` MiB of documents
  (about 1 KiB each, realistic orders spread over several databases and collections) and
  converted alone by the collection's playbooks/encrypt_existing_data.yml. Printed per member,
  from the playbook's JSON report (mongod_fleet's report, ``members.<host>.details`` written by
  kmip_conversion - ConversionReport): its dbPath's data size before (``data_bytes``, what the
  pre-flight divides by the copy rate), the initial sync time (``seconds.initial_sync``), the
  member's whole conversion time (``seconds.total``: stop, set aside and configure, initial
  sync), and the **copy rate** = data size / initial sync time; also mongod's own "Initial sync
  done" durationSeconds (log id 21163).
  The copy rate is what ``kmip_conversion_copy_rate_mib_per_second`` should hold: the lowest
  per-member figure, and a straight-line fit of sync time against data size (the marginal rate
  and the fixed start-up cost of a sync).
- **Fleet scaling**: T(1) is the wall time of the ansible-playbook run that converted the
  ``--fleet-size`` set alone (an arm-1 run, the first one, right before the N-set runs);
  T(N) the wall time of one run over N other sets of the same size, in waves. Goal: T(4)/T(1)
  <= 1.5.

The playbook gets only the variables in PLAYBOOK_VARS (the role's names may change: adapt them
there; the report's fields are read in ConversionReport). Needs root and podman; it has its own
addresses, containers and lock:

    flock /tmp/kmipops-lock-bench-conversion .venv/bin/python bench/bench_conversion.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import REPO_ROOT, header, write_results
from bench_rotation_fleet import Fleet

NET = "127.0.16"
PREFIX = "kmipops-cbench-"
PLAYBOOK = "playbooks/encrypt_existing_data.yml"
# Every variable the benchmark gives the playbook ({hosts}: a host pattern, {report}: a JSON path):
# the playbook's kmip_conversion_hosts and kmip_conversion_install_prereqs, the role's
# kmip_conversion_report_path (roles/kmip_conversion/meta/argument_specs.yml). install_prereqs/
# interpreter: the image's venv is there already (prepare.yml), as in the Molecule verify. The end of
# an initial sync is seen within mongod_fleet_wait_sleep, 1 s by default: nothing to set for it.
PLAYBOOK_VARS = {
    "kmip_conversion_hosts": "{hosts}",
    "kmip_conversion_report_path": "{report}",
    "kmip_conversion_install_prereqs": "false",
    "kmipops_python_interpreter": "/opt/kmipops/venv/bin/python",
}
CONVERGE = "molecule/encrypt-existing/converge.yml"
DESTROY = "molecule/rotation/destroy.yml"
DATABASES = 4
COLLECTIONS = ("orders", "events")
BATCH_BYTES = 2 * 1024 * 1024
MIB = 1024 * 1024
# the emulator's throttle of an initial sync (a setParameter of the emulator only, not of mongod)
THROTTLE_PARAMETER = "psmdbEmulatorInitialSyncBytesPerSec"

WORDS = (
    "order",
    "shipped",
    "delivered",
    "pending",
    "refund",
    "invoice",
    "warehouse",
    "customer",
    "express",
    "standard",
    "priority",
    "fragile",
    "parcel",
    "address",
    "street",
    "city",
    "postal",
    "region",
    "note",
    "gift",
    "wrap",
    "returned",
    "exchange",
    "damaged",
    "signature",
    "contact",
    "phone",
    "email",
    "review",
    "rating",
    "discount",
    "coupon",
    "loyalty",
    "member",
    "tier",
)


def document(rng: random.Random, number: int, epoch: datetime) -> dict[str, object]:
    """One order of about 1 KiB: nested fields, an array, dates, numbers and free text."""
    items = [
        {"sku": f"SKU-{rng.randrange(10**6):06d}", "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 500), 2)}
        for _ in range(rng.randint(2, 6))
    ]
    return {
        "_id": number,
        "customer": {
            "id": rng.randrange(10**6),
            "name": f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}",
            "email": f"user{rng.randrange(10**7)}@example.test",
            "address": {
                "street": f"{rng.randint(1, 999)} {rng.choice(WORDS).title()} Street",
                "city": rng.choice(WORDS).title(),
                "postal_code": f"{rng.randrange(10**5):05d}",
            },
        },
        "items": items,
        "total": round(sum(item["qty"] * item["price"] for item in items), 2),
        "status": rng.choice(("pending", "shipped", "delivered", "returned")),
        "created": epoch + timedelta(seconds=number * 7 + rng.randrange(7)),
        "tags": rng.sample(WORDS, 4),
        "notes": " ".join(rng.choices(WORDS, k=rng.randint(60, 100))),
    }


def fill(fleet: Fleet, replset: str, mib: float, seed: int) -> dict[str, float]:
    """Insert about ``mib`` MiB (BSON) of documents into the set, spread over DATABASES x COLLECTIONS."""
    import bson
    import fleet_lib
    from pymongo import WriteConcern

    lib_fleet = fleet_lib.Fleet.load(fleet.state_dir / "rotation" / "fleet.json")
    lib_fleet.install_resolver()
    rng = random.Random(seed)
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    target = int(mib * MIB)
    slots = [(f"bench_db{index}", name) for index in range(DATABASES) for name in COLLECTIONS]
    inserted = docs = 0
    started = time.monotonic()
    with fleet_lib.set_client(lib_fleet, replset) as client:
        slot = 0
        while inserted < target:
            batch, size = [], 0
            while size < BATCH_BYTES and inserted + size < target:
                entry = document(rng, docs, epoch)
                size += len(bson.encode(entry))
                batch.append(entry)
                docs += 1
            database, collection = slots[slot % len(slots)]
            slot += 1
            majority = WriteConcern(w="majority", wtimeout=300000)
            insert_batch(client[database].get_collection(collection, write_concern=majority), batch)
            inserted += size
    return {"mib": inserted / MIB, "documents": docs, "seconds": time.monotonic() - started}


def fill_line(filled: dict[str, dict[str, float]], seconds: float) -> str:
    if not filled:
        return "fill: no figures (see the note below); data MiB in the tables is what each member held"
    return (
        f"fill: {sum(f['mib'] for f in filled.values()):.0f} MiB, {sum(f['documents'] for f in filled.values()):.0f} "
        f"documents over {DATABASES} databases x {len(COLLECTIONS)} collections per set, w:majority, "
        f"{seconds:.0f} s (plus the scenario's {DATABASES} x 1500 small documents per set)"
    )


def insert_batch(collection: Any, batch: list[dict[str, object]], attempts: int = 10) -> None:
    """insert_many that outlives an election under load: the batch again (unordered, duplicates are a no-op)."""
    from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure

    for attempt in range(attempts):
        try:
            collection.insert_many(batch, ordered=False)
            return
        except BulkWriteError as exc:
            if all(error.get("code") == 11000 for error in exc.details.get("writeErrors", [])) and not exc.details.get(
                "writeConcernErrors"
            ):
                return  # what an earlier attempt had inserted
            if attempt == attempts - 1:
                raise
        except (ConnectionFailure, OperationFailure):  # NotPrimaryError is a ConnectionFailure
            if attempt == attempts - 1:
                raise
        time.sleep(2)


def playbook_args(hosts: str, report: Path) -> list[str]:
    args: list[str] = []
    for name, value in PLAYBOOK_VARS.items():
        args += ["-e", f"{name}={value.replace('{hosts}', hosts).replace('{report}', str(report))}"]
    return args


class ReportShapeError(ValueError):
    """The JSON report is not the kmip_conversion report this script reads (its fields moved or were renamed)."""


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportShapeError(f"{where}: a number expected, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MemberFigures:
    """One member of the report: mongod_fleet's entry (fleet_report) with kmip_conversion's details."""

    host: str  # the inventory host, the key of ``members``
    status: str  # done, failed, skipped, halted, lost (fleet_report)
    wave: int | None  # the wave it was worked in
    data_bytes: float | None  # details.data_bytes: its dbPath before, as the pre-flight measured it
    initial_sync_seconds: float | None  # details.seconds.initial_sync: mongod's start to SECONDARY and caught up
    conversion_seconds: float | None  # details.seconds.total: from the stop to caught up, the role's whole conversion
    rolled_back: bool  # details.rolled_back: its conversion failed and the old data is back

    @property
    def data_mib(self) -> float | None:
        return None if self.data_bytes is None else self.data_bytes / MIB

    @property
    def copy_rate(self) -> float | None:
        """data MiB / initial sync s, None without both figures."""
        sync = self.initial_sync_seconds
        return self.data_bytes / MIB / sync if self.data_bytes is not None and sync else None

    @classmethod
    def parse(cls, host: str, entry: object) -> MemberFigures:
        """One ``members`` entry: plan.yml/member.yml record it, report.yml merges kmip_conversion_member_details."""
        if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
            raise ReportShapeError(f"members.{host}: a mapping with a status expected, got {entry!r}")
        details = entry.get("details")
        if not isinstance(details, dict):
            raise ReportShapeError(f"members.{host}.details: a mapping expected, got {details!r}")
        # preflight.yml sets data_bytes for every member; convert_member.yml the step times once it is verified
        steps = details.get("seconds", {})
        if not isinstance(steps, dict):
            raise ReportShapeError(f"members.{host}.details.seconds: a mapping of step times expected, got {steps!r}")
        wave = entry.get("wave")
        if wave is not None and (isinstance(wave, bool) or not isinstance(wave, int)):
            raise ReportShapeError(f"members.{host}.wave: an integer expected, got {wave!r}")
        figures = cls(
            host=host,
            status=entry["status"],
            wave=wave,
            data_bytes=_number(details.get("data_bytes"), f"members.{host}.details.data_bytes"),
            initial_sync_seconds=_number(steps.get("initial_sync"), f"members.{host}.details.seconds.initial_sync"),
            conversion_seconds=_number(steps.get("total"), f"members.{host}.details.seconds.total"),
            rolled_back=details.get("rolled_back") is True,
        )
        if figures.status == "done" and None in (
            figures.data_bytes,
            figures.initial_sync_seconds,
            figures.conversion_seconds,
        ):
            raise ReportShapeError(
                f"members.{host}: done, but details.data_bytes, details.seconds.initial_sync or details.seconds.total "
                f"is missing (details {sorted(details)}, seconds {sorted(steps)})"
            )
        return figures


@dataclass(frozen=True)
class ConversionReport:
    """The playbook's JSON report (kmip_conversion_report_path): mongod_fleet's report.yml, fleet_report filter."""

    outcome: str  # complete, halted, incomplete... (fleet_report)
    members: dict[str, MemberFigures]

    @classmethod
    def parse(cls, report: object) -> ConversionReport:
        if not isinstance(report, dict) or not isinstance(report.get("outcome"), str):
            raise ReportShapeError("not a mongod_fleet report: no outcome")
        members = report.get("members")
        if not isinstance(members, dict):
            raise ReportShapeError(f"members: a mapping of inventory host to member expected, got {members!r}")
        return cls(report["outcome"], {host: MemberFigures.parse(host, entry) for host, entry in members.items()})

    @classmethod
    def load(cls, path: Path) -> ConversionReport:
        try:
            return cls.parse(json.loads(path.read_text()))
        except ReportShapeError as exc:
            raise ReportShapeError(f"{path}: {exc}") from exc

    def rates(self) -> list[float]:
        """The copy rate of every member with both figures."""
        return [rate for member in self.members.values() if (rate := member.copy_rate) is not None]

    def conversion_times(self) -> list[float]:
        return [s for member in self.members.values() if (s := member.conversion_seconds) is not None]


class Members:
    """What the script reads from the members themselves (podman exec, pymongo)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.podman = ["bash", "-c", 'source "$0" && exec podman "$@"', str(REPO_ROOT / "tests/images/podman-env.sh")]

    def sync_done_seconds(self, host: str) -> float | None:
        """mongod's own figure: durationSeconds of its last "Initial sync done" (log id 21163)."""
        command = [*self.podman, "exec", self.fleet.prefix + host, "grep", "-E", '"id": ?21163[,}]']
        lines = subprocess.run([*command, "/var/log/mongodb/mongod.log"], capture_output=True, text=True).stdout
        for line in reversed(lines.splitlines()):
            try:
                return float(json.loads(line)["attr"]["durationSeconds"])
            except (ValueError, KeyError, TypeError):
                continue
        return None

    def throttle(self) -> str:
        import fleet_lib

        lib_fleet = fleet_lib.Fleet.load(self.fleet.state_dir / "rotation" / "fleet.json")
        lib_fleet.install_resolver()
        try:
            with fleet_lib.member_client(lib_fleet, lib_fleet.members[0]) as client:
                value = client.admin.command({"getParameter": 1, THROTTLE_PARAMETER: 1})[THROTTLE_PARAMETER]
            return f"{int(value) / MIB:.0f} MiB/s"
        except Exception as exc:  # only informative
            return f"unknown ({type(exc).__name__})"


def fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares seconds = a + MiB / rate: (rate MiB/s, a seconds), None if it cannot be fitted."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    if slope <= 0:
        return None
    return 1 / slope, mean_y - slope * mean_x


def read_report(label: str, path: Path, lines: list[str]) -> ConversionReport | None:
    """The report of one run, None without one; a report in another shape is named in the results, not fatal."""
    if not path.exists():
        return None
    try:
        report = ConversionReport.load(path)
    except (ReportShapeError, json.JSONDecodeError) as exc:
        lines.append(f"{label}: report not read: {exc}")
        return None
    if report.outcome != "complete":
        lines.append(f"{label}: the report's outcome is {report.outcome}, not complete")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,32,96", help="MiB of documents per size set (default %(default)s)")
    parser.add_argument(
        "--fleet-size",
        type=float,
        help="MiB of documents of the fleet-scaling sets (one of --sizes; default the middle)",
    )
    parser.add_argument("--sets", default="1,4", help="N of the fleet scaling, comma-separated (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="leave the fleet up (remove it with --destroy-only)")
    parser.add_argument("--destroy-only", action="store_true", help="only remove a fleet left by --keep")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="with --state-dir: write the results of what a stopped run measured, touching no host",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="the fleet's state directory: with --keep, a later run with it goes on where this one stopped",
    )
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    counts = sorted({int(n) for n in args.sets.split(",")})
    fleet_size = args.fleet_size if args.fleet_size is not None else sorted(sizes)[len(sizes) // 2]
    if fleet_size not in sizes:
        parser.error("--fleet-size must be one of --sizes (its 1-set run is that size's run)")
    if counts[0] != 1 or counts[-1] > 6 or any(s <= 0 for s in sizes):
        parser.error("--sets must start with 1 and stay <= 6; --sizes must be positive")
    size_sets = {f"size{index}": size for index, size in enumerate(sizes, 1)}
    fleet_sets = {count: [f"n{count}s{k}" for k in range(1, count + 1)] for count in counts if count > 1}
    spec = ",".join([*size_sets, *(name for names in fleet_sets.values() for name in names)])
    if 21 + 3 * spec.count(",") + 3 > 255:
        parser.error("too many sets for one /24")

    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="bench-conversion-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    log_dir = REPO_ROOT / ".build" / "bench-conversion-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(0, state_dir, log_dir, NET, PREFIX, spec)
    if args.destroy_only:
        fleet.playbook(DESTROY, label="destroy")
        return 0
    # molecule/shared/files: fleet_lib (pymongo helpers)
    sys.path.insert(0, str(REPO_ROOT / "molecule" / "shared" / "files"))

    by_set: dict[str, ConversionReport] = {}
    walls: dict[str, float] = {}
    filled: dict[str, dict[str, float]] = {}
    sync_done: dict[str, float | None] = {}
    # the fleet-size set first, then the N-set runs: T(1) next to T(N); then the other sizes
    base = next(name for name, size in size_sets.items() if size == fleet_size)
    runs = [(base, [base])] + [(f"N={count}", names) for count, names in fleet_sets.items()]
    runs += [(name, [name]) for name in size_sets if name != base]
    # progress.json: what is done, so that a run stopped by an error goes on from there with the same --state-dir
    progress_file = state_dir / "progress.json"
    progress: dict[str, Any] = json.loads(progress_file.read_text()) if progress_file.exists() else {}

    def save() -> None:
        progress_file.write_text(json.dumps(progress, indent=1))

    # the header (date, load average) of the run that brought the fleet up; a resumed run says so
    lines = list(
        progress.setdefault(
            "header", header(f"conversion to KMIP by rolling initial sync: {len(fleet.names)} replica sets x 3 members")
        )
    )
    if "bring_up" in progress and not args.report_only:
        lines.insert(-1, "resumed with the fleet kept up: " + ", ".join(header("")[1:3]))
    lines.append("fleet: podman containers (systemd, mongod.service) running the PSMDB emulator, 2 PyKMIP servers")
    lines.append(f"playbook: {PLAYBOOK} " + " ".join(f"-e {k}={v}" for k, v in PLAYBOOK_VARS.items()))
    if args.report_only:
        # read-only: the progress and reports of the state directory, the members' logs if they are still up
        walls = progress.get("walls", {})
        filled = progress.get("filled", {})
        lines.append(f"bring-up (create, prepare, converge): {progress.get('bring_up', 0):.0f} s")
        if (state_dir / "admin-password").exists():
            os.environ["KMIPOPS_ADMIN_PASSWORD"] = (state_dir / "admin-password").read_text().split()[0]
            lines.append(f"emulator's initial sync throttle ({THROTTLE_PARAMETER}): {Members(fleet).throttle()}")
        if filled:
            lines.append(fill_line(filled, progress.get("fill_seconds", 0)))
        lines += progress.get("notes", [])
        for label, _names in runs:
            report = state_dir / f"report-{label.replace('=', '')}.json"
            if label in walls and (read := read_report(label, report, lines)) is not None:
                by_set[label] = read
                for host in read.members:
                    sync_done[host] = Members(fleet).sync_done_seconds(host)
        missing = [label for label, _names in runs if label not in walls]
        if missing:
            lines.append(f"PARTIAL: the run stopped before {', '.join(missing)}")
        lines += results_lines(size_sets, fleet_size, fleet_sets, filled, walls, by_set, sync_done)
        write_results("bench_conversion", lines)
        return 0
    try:
        if "bring_up" in progress:
            print(f"reusing the fleet of {state_dir} (logs in {log_dir})", flush=True)
        else:
            print(f"bringing up {len(fleet.names)} sets ({state_dir}, logs in {log_dir})", flush=True)
            progress["bring_up"] = sum(
                fleet.playbook(step, label=Path(step).stem)
                for step in ("molecule/shared/create.yml", "molecule/shared/prepare.yml", CONVERGE)
            )
            save()
        lines.append(f"bring-up (create, prepare, converge): {progress['bring_up']:.0f} s")
        os.environ["KMIPOPS_ADMIN_PASSWORD"] = (state_dir / "admin-password").read_text().split()[0]
        members = Members(fleet)
        lines.append(f"emulator's initial sync throttle ({THROTTLE_PARAMETER}): {members.throttle()}")
        if "filled" not in progress:
            targets = {**size_sets, **{name: fleet_size for names in fleet_sets.values() for name in names}}
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=len(targets)) as pool:
                jobs = {
                    name: pool.submit(fill, fleet, name, mib, seed) for seed, (name, mib) in enumerate(targets.items())
                }
                progress["filled"] = {name: job.result() for name, job in jobs.items()}
            progress["fill_seconds"] = time.monotonic() - started
            save()
            print(f"  filled in {progress['fill_seconds']:.0f} s", flush=True)
        filled = progress["filled"]
        lines.append(fill_line(filled, progress["fill_seconds"]))
        lines += progress.get("notes", [])
        fleet.tool("wait-healthy", "--timeout=900")

        walls = progress.setdefault("walls", {})
        for label, names in runs:
            report = state_dir / f"report-{label.replace('=', '')}.json"
            if label not in walls:
                if progress.get("started") == label:
                    # the earlier attempt failed part-way: this run converts only what it left
                    lines.append(f"{label}: re-run after a failed attempt, its times cover only the rest")
                progress["started"] = label
                save()
                hosts = ":".join(f"replset_{name}" for name in names)
                walls[label] = fleet.playbook(PLAYBOOK, *playbook_args(hosts, report), label=f"convert-{label}")
                save()
                fleet.tool("wait-healthy", f"--sets={','.join(names)}", "--timeout=900")
            if (read := read_report(label, report, lines)) is not None:
                by_set[label] = read
                for host in read.members:
                    sync_done[host] = members.sync_done_seconds(host)
    finally:
        if not args.keep:
            fleet.playbook(DESTROY, label="destroy")
        else:
            print(f"fleet kept; remove it with --destroy-only --state-dir {state_dir}", flush=True)

    lines += results_lines(size_sets, fleet_size, fleet_sets, filled, walls, by_set, sync_done)
    write_results("bench_conversion", lines)
    return 0


def size_points(size_sets: dict[str, float], by_set: dict[str, ConversionReport]) -> list[tuple[float, float]]:
    """(data MiB, initial sync s) of every member of the size runs (one set at a time) with both figures."""
    return [
        (member.data_mib, member.initial_sync_seconds)
        for name in size_sets
        if name in by_set
        for member in by_set[name].members.values()
        if member.data_mib is not None and member.initial_sync_seconds  # both figures, a sync that took time
    ]


def copy_rate_fit(size_sets: dict[str, float], by_set: dict[str, ConversionReport]) -> tuple[float, float] | None:
    """The straight-line fit over the size runs; a line needs two data sizes at least (members of one set
    differ only by their oplog's size)."""
    if sum(1 for name in size_sets if name in by_set and by_set[name].rates()) < 2:
        return None
    return fit(size_points(size_sets, by_set))


def results_lines(
    size_sets: dict[str, float],
    fleet_size: float,
    fleet_sets: dict[int, list[str]],
    filled: dict[str, dict[str, float]],
    walls: dict[str, float],
    by_set: dict[str, ConversionReport],
    sync_done: dict[str, float | None],
) -> list[str]:
    def num(value: object, spec: str = ".1f") -> str:
        return format(value, spec) if isinstance(value, int | float) else "-"

    lines = [
        "",
        "per member against data size, each set converted alone; from the JSON report's members.<host>.details:",
        "data = data_bytes, the member's dbPath before, as the pre-flight measures it; sync = seconds.initial_sync,",
        "from mongod's start to SECONDARY and caught up as the primary sees it (mongod's start-up and the polling",
        "included); member = seconds.total, from the stop to caught up (stop, set aside and configure, initial sync;",
        "not the gate, the step-down nor the KMIP check after); status = the member's (rb: rolled back);",
        "MiB/s = data / sync; mongod = its own log's 'Initial sync done' durationSeconds (whole seconds):",
        f"  {'set':<6} {'docs MiB':>8} {'member':<8} {'wave':>4} {'status':<10} {'data MiB':>8} {'sync s':>7} "
        f"{'mongod s':>8} {'member s':>8} {'MiB/s':>6}",
    ]
    for name, size in size_sets.items():
        report = by_set.get(name)
        if report is None or not report.members:
            lines.append(
                f"  {name:<6} not measured" if name not in walls else f"  {name:<6} no member figures in its report"
            )
        members = report.members.values() if report is not None else []
        for member in sorted(members, key=lambda m: (m.wave is None, m.wave or 0, m.host)):
            status = member.status + ("/rb" if member.rolled_back else "")
            lines.append(
                f"  {name:<6} {num(filled.get(name, {}).get('mib'), '.0f'):>8} {member.host:<8} "
                f"{num(member.wave, 'd'):>4} {status[:10]:<10} {num(member.data_mib):>8} "
                f"{num(member.initial_sync_seconds):>7} {num(sync_done.get(member.host), '.0f'):>8} "
                f"{num(member.conversion_seconds):>8} {num(member.copy_rate):>6}"
            )
        if name in walls:
            times = report.conversion_times() if report is not None else []
            mean = f", mean per member {statistics.fmean(times):.1f} s" if times else ""
            lines.append(f"  {name:<6} ({size:g} MiB of documents): wall time of the run {walls[name]:.1f} s{mean}")
    lines.append("")
    size_rates = {name: by_set[name].rates() for name in size_sets if name in by_set}
    if any(size_rates.values()):
        lines.append(
            f"copy rate of this fleet (data MiB / initial sync s), {sum(map(len, size_rates.values()))} members "
            "converted one at a time:"
        )
        for name, size in size_sets.items():
            if size_rates.get(name):
                lines.append(f"  {size:g} MiB of documents: median {statistics.median(size_rates[name]):.1f} MiB/s")
        for count in fleet_sets:
            set_rates = by_set[f"N={count}"].rates() if f"N={count}" in by_set else []
            if set_rates:
                lines.append(
                    f"  {fleet_size:g} MiB, {count} syncs at once (the fleet shares 2 cores): median "
                    f"{statistics.median(set_rates):.1f} MiB/s, lowest {min(set_rates):.1f} MiB/s"
                )
        fitted = copy_rate_fit(size_sets, by_set)
        if fitted:
            lines.append(
                f"  straight-line fit sync s = a + data MiB / rate: marginal rate {fitted[0]:.1f} MiB/s, "
                f"a = {fitted[1]:.1f} s (fixed start-up of a sync)"
            )
        lines += [
            "  kmip_conversion_copy_rate_mib_per_second (role default 20): data / sync (details.data_bytes /",
            "  details.seconds.initial_sync) of the members of a first conversion (its JSON report), at the largest",
            "  size; the lowest figure is the safe side",
        ]
    base_label = next(n for n, s in size_sets.items() if s == fleet_size)
    lines += ["", f"fleet scaling, {fleet_size:g} MiB of documents per set, waves, same run:"]
    lines.append(f"  {'N':>3} {'T':>9} {'T(N)/T(1)':>10}  sets")
    if base_label in walls:
        base = walls[base_label]
        lines.append(f"  {1:>3} {base:>8.1f}s {1.0:>10.2f}  {base_label}")
        base_times = by_set[base_label].conversion_times() if base_label in by_set else []
        for count, names in fleet_sets.items():
            wall = walls.get(f"N={count}")
            if wall is None:
                continue
            lines.append(f"  {count:>3} {wall:>8.1f}s {wall / base:>10.2f}  {','.join(names)}")
            times = by_set[f"N={count}"].conversion_times() if f"N={count}" in by_set else []
            if times and base_times:
                lines.append(
                    f"      mean time per member: {statistics.fmean(times):.1f} s at N={count} vs "
                    f"{statistics.fmean(base_times):.1f} s at N=1"
                )
        goal = walls.get(f"N={max(fleet_sets)}") if fleet_sets else None
        if goal is not None:
            lines.append(f"  goal: T({max(fleet_sets)})/T(1) <= 1.5: {'met' if goal / base <= 1.5 else 'NOT met'}")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
