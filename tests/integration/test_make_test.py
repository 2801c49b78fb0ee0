# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make test` itself: a failed suite does not stop the others, and one summary ends the run.

The real Makefile runs stand-in suites (targets from an extra makefile given in MAKEFILES) with
its own logs directory, so the run under test never touches the suites of a `make test` that
may be running this file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kmiplab.playbook import REPO_ROOT

SUITES_MAKEFILE = """
standin-fails:
\t@echo "output of the failing suite"; exit 3
standin-passes:
\t@echo "output of the passing suite"
"""


def _make_test(tmp_path: Path, suites: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    extra = tmp_path / "suites.mk"
    extra.write_text(SUITES_MAKEFILE)
    logs = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES")}
    env["MAKEFILES"] = str(extra)
    result = subprocess.run(
        ["make", "--no-print-directory", "test", f"TEST_SUITES={suites}", "TEST_JOBS=1", f"TEST_LOGS={logs}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return result, logs


def test_a_failed_suite_does_not_stop_the_others_and_the_summary_names_it(tmp_path: Path) -> None:
    # one job at a time, the failing suite first: the passing one can only run after the failure
    result, logs = _make_test(tmp_path, "standin-fails standin-passes")
    assert result.returncode != 0, result.stdout
    out = result.stdout
    assert out.index("output of the failing suite") < out.index("output of the passing suite")
    summary = out[out.index("make test summary") :]
    rows = {line.split()[0]: line.split()[1:4] for line in summary.splitlines()[2:4]}
    assert rows["standin-fails"][:2] == ["FAILED", "2"]  # make's exit code for a failed recipe
    assert rows["standin-passes"][:2] == ["passed", "0"]
    assert "FAILED suite: standin-fails (rc 2" in summary
    assert out.rstrip().splitlines()[-1] == "suites: 1 passed, 1 failed"
    assert "output of the passing suite" in (logs / "standin-passes.log").read_text()
    assert "output of the failing suite" in (logs / "standin-fails.log").read_text()


def test_make_test_exits_0_when_every_suite_passes(tmp_path: Path) -> None:
    result, _logs = _make_test(tmp_path, "standin-passes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == "suites: 1 passed, 0 failed"
