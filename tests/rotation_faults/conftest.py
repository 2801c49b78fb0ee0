# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault scenarios' fleet, brought up once per session and removed at the end.

KMIPOPS_FAULTS_KEEP=1 leaves the hosts up (remove them with `make molecule-rotation-faults-destroy`);
KMIPOPS_FAULTS_STATE_DIR=<the state directory it printed> then reuses them instead of bringing up
a new fleet (to debug one scenario: `-k`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultlab import REPO_ROOT, FaultFleet, log


@pytest.fixture(scope="session")
def fleet() -> Iterator[FaultFleet]:
    given = os.environ.get("KMIPOPS_FAULTS_STATE_DIR")
    state_dir = Path(given) if given else Path(tempfile.mkdtemp(prefix="kmipops-faults-"))
    log_dir = REPO_ROOT / ".build" / "rotation-faults-logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    hosts = FaultFleet(state_dir, log_dir)
    try:
        if given and hosts.fleet_json.exists():
            log(f"reusing the fleet of {state_dir}")
            hosts.wait_healthy()
        else:
            # a fleet left by an interrupted session (same prefix and addresses) goes first
            hosts.playbook("molecule/rotation/destroy.yml", label="destroy-leftovers", check=False)
            state_dir.mkdir(exist_ok=True)
            seconds = hosts.bring_up()
            log(f"fleet up in {seconds:.0f} s (state {state_dir}, logs {log_dir})")
        yield hosts
    finally:
        if os.environ.get("KMIPOPS_FAULTS_KEEP") != "1":
            hosts.destroy()
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            log(f"hosts kept; state in {state_dir}")


@pytest.fixture(autouse=True)
def _no_background_left(fleet: FaultFleet) -> Iterator[None]:
    """A scenario that fails leaves no writer or sampler running for the next one."""
    yield
    fleet.stop_all_background()
