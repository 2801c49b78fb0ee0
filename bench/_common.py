# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared set-up of the benchmarks: import paths, a lab PKI, results files.

The benchmarks use 127.0.20.200-127.0.20.254 (the KMIP suite's range, above what its tests use).
"""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
for extra in (REPO_ROOT / "tests", REPO_ROOT / ".build" / "collections"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from kmiplab.playbook import ensure_collection_link  # noqa: E402

ensure_collection_link()

BENCH_NET = "127.0.20"


def header(title: str) -> list[str]:
    with open("/proc/loadavg", encoding="ascii") as loadavg:
        load = loadavg.read().split()[:3]
    return [
        f"# {title}",
        f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"python: {platform.python_version()}  machine: {platform.machine()}  load average: {' '.join(load)}",
        "",
    ]


def write_results(name: str, lines: list[str]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwritten to {path}")
    return path
