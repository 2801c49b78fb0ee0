# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench_rotation_fleet.py: what it reads from the rotation report and the probe play it times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bench_rotation_fleet as bench
import pytest


def member(status: str, turn: Any = 13.5, **seconds: Any) -> dict[str, Any]:
    figures = {"stop": 3.1, "rotate": 1.9, "start": 2.7, "catch_up": 1.9, "total": 9.7, **seconds}
    return {"status": status, "seconds": turn, "details": {"seconds": figures} if status == "done" else {}}


def test_the_role_times_are_read_from_the_fleet_report() -> None:
    report = {"members": {"mongo2": member("done"), "mongo1": member("done", turn=28.4, stop=16.6, total=21.7)}}
    times = bench.role_member_seconds(report)
    assert times["mongo2"] == {"turn": 13.5, "stop": 3.1, "rotate": 1.9, "start": 2.7, "catch_up": 1.9, "total": 9.7}
    assert times["mongo1"]["stop"] == 16.6 and times["mongo1"]["turn"] == 28.4


def test_members_not_done_are_left_out() -> None:
    report = {"members": {"mongo4": member("failed", turn=None), "mongo5": member("skipped", turn=None)}}
    assert bench.role_member_seconds(report) == {}


def test_a_done_member_without_its_figures_is_an_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"mongo2: catch_up is '1\.9'"):
        bench.role_member_seconds({"members": {"mongo2": member("done", catch_up="1.9")}})
    with pytest.raises(KeyError, match="rotate"):
        broken = member("done")
        del broken["details"]["seconds"]["rotate"]
        bench.role_member_seconds({"members": {"mongo2": broken}})


def test_the_probe_play_runs_n_read_only_module_tasks_on_one_member(tmp_path: Path) -> None:
    path = bench.probe_playbook(tmp_path / "probe.yml", "mongo3", 11)
    (play,) = json.loads(path.read_text())
    assert play["hosts"] == "mongo3" and play["gather_facts"] is False
    assert len(play["tasks"]) == 11
    assert all(task["kmipops.psmdb.mongod_encryption_info"]["query_server"] is False for task in play["tasks"])


def test_the_waves_arm_runs_on_the_prepared_venv_like_the_naive_arm() -> None:
    args = bench.arm_args(bench.WAVES_ARGS, "replset_rs1", Path("/tmp/r.json"))
    assert "kmip_rotation_install_prereqs=false" in args and "kmip_rotation_hosts=replset_rs1" in args
