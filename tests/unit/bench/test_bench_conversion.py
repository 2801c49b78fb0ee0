# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/bench_conversion.py reads the conversion's JSON report: mongod_fleet's report (fleet_report)
with kmip_conversion's member details, built here by the filters themselves."""

from __future__ import annotations

import json
from typing import Any

import bench_conversion
import pytest
from bench_conversion import MIB, ConversionReport, ReportShapeError, copy_rate_fit, results_lines

from ansible_collections.kmipops.psmdb.plugins.filter.fleet_report import fleet_report
from ansible_collections.kmipops.psmdb.plugins.filter.fleet_waves import fleet_waves
from unit.utils.replset_records import replset

T0 = 1_800_000_000.0


def preflight(data_bytes: int) -> dict[str, Any]:
    """kmip_conversion_member_details as preflight.yml sets them for every member (a halted one keeps only these)."""
    return {
        "data_before": "none",
        "config_before": "none",
        "data_bytes": data_bytes,
        "free_bytes": 50 * data_bytes,
        "estimated_sync_seconds": round(data_bytes / (20 * MIB), 1),
        "oplog_window_seconds": 86400,
    }


def converted(data_bytes: int, sync: float, stop: float = 2.0, configure: float = 1.5) -> dict[str, Any]:
    """The details of a converted member: preflight.yml's, then convert_member.yml's."""
    seconds = {
        "stop": stop,
        "set_aside_and_configure": configure,
        "initial_sync": sync,
        "total": round(stop + configure + sync, 1),
    }
    return preflight(data_bytes) | {
        "stepped_down": False,
        "set_aside_path": "/var/lib/mongo.pre-kmip-20261202T210000Z",
        "key_identifier_after": "42",
        "data_after": "kmip",
        "seconds": seconds,
        "sync_seconds": sync,
        "elections": 0,
        "max_lag_seconds_seen": 0,
        "summary": f"none -> KMIP key 42, {data_bytes} bytes, initial sync {sync} s",
    }


def report_of(set_name: str, hosts: list[str], details: dict[str, dict[str, Any]], **fleet: Any) -> dict[str, Any]:
    """The JSON file report.yml writes: fleet_report over one result per host, as plan.yml and member.yml record it."""
    plan = fleet_waves(replset(set_name, hosts, primary=0))
    results = []
    for host in hosts:
        planned = plan["hosts"][host]
        result = {
            "host": host,
            "set_name": set_name,
            "member": planned["member"],
            "role": planned["role"],
            "wave": planned["wave"],
            "status": "done",
            "started_at": T0 + 100 * planned["wave"],
            "ended_at": T0 + 100 * planned["wave"] + details[host].get("seconds", {}).get("total", 5) + 3,
            "details": details[host],
        }
        result.update(fleet.get(host, {}))
        results.append(result)
    report = fleet_report(results, plan=plan, operation="conversion to KMIP by initial sync", started_at=T0)
    return json.loads(json.dumps(report))  # what to_nice_json wrote, read back


HOSTS_1 = ["mongo1", "mongo2", "mongo3"]
HOSTS_2 = ["mongo4", "mongo5", "mongo6"]


def uniform(set_name: str, hosts: list[str], mib: float, sync: float) -> ConversionReport:
    """The parsed report of a set whose members all held ``mib`` MiB and synced in ``sync`` s."""
    return ConversionReport.parse(report_of(set_name, hosts, {h: converted(int(mib * MIB), sync) for h in hosts}))


def size_reports(sync_of: Any) -> dict[str, ConversionReport]:
    """size1 at 10 MiB and size2 at 40 MiB of data, the initial sync time a function of the data size."""
    return {"size1": uniform("size1", HOSTS_1, 10, sync_of(10)), "size2": uniform("size2", HOSTS_2, 40, sync_of(40))}


def test_reads_each_member_figures_from_the_details() -> None:
    details = {
        "mongo1": converted(30 * MIB, 12.0),
        "mongo2": converted(20 * MIB, 8.0, stop=4.0),
        "mongo3": converted(20 * MIB, 10.0),
    }
    report = ConversionReport.parse(report_of("size1", HOSTS_1, details))
    assert report.outcome == "complete"
    assert sorted(report.members) == HOSTS_1
    primary, second = report.members["mongo1"], report.members["mongo2"]
    assert (primary.status, primary.wave, primary.rolled_back) == ("done", 2, False)
    assert second.wave == 0
    assert primary.data_bytes == 30 * MIB and primary.data_mib == 30.0
    assert primary.initial_sync_seconds == 12.0
    # the role's whole conversion: stop + set aside and configure + initial sync, not the fleet's time in the wave
    assert second.conversion_seconds == 13.5
    assert primary.copy_rate == pytest.approx(2.5)
    assert sorted(report.rates()) == pytest.approx([2.0, 2.5, 2.5])
    assert sorted(report.conversion_times()) == [13.5, 13.5, 15.5]


def test_copy_rate_fit_over_two_sizes() -> None:
    # sync s = 4 + MiB / 8: the marginal rate 8 MiB/s, the fixed start-up 4 s
    by_set = size_reports(lambda mib: 4 + mib / 8)
    assert by_set["size1"].rates() == pytest.approx([10 / 5.25] * 3)
    rate, start_up = copy_rate_fit({"size1": 10, "size2": 40}, by_set)
    assert rate == pytest.approx(8.0)
    assert start_up == pytest.approx(4.0)
    assert copy_rate_fit({"size1": 10}, by_set) is None  # one data size: no line


def test_a_rolled_back_member_has_no_sync_figures_and_halts_its_set() -> None:
    # rollback_member.yml's details after a failed initial sync (convert_member.yml got past the set-aside)
    failed = preflight(10 * MIB) | {
        "stepped_down": False,
        "set_aside_path": "/var/lib/mongo.pre-kmip-20261202T210000Z",
        "rolled_back": True,
        "failed_step": "initial_sync",
        "summary": "FAILED at initial_sync, rolled back: old data (none) and mongod.conf back, caught up",
    }
    details = {"mongo1": preflight(10 * MIB), "mongo2": failed, "mongo3": converted(10 * MIB, 5.0)}
    fleet = {"mongo2": {"status": "failed", "reason": "Wait until the primary sees this member...: timed out"}}
    fleet |= {"mongo1": {"status": "halted", "reason": "set halted"}}
    report = ConversionReport.parse(report_of("size1", HOSTS_1, details, **fleet))
    assert report.outcome == "halted"
    member = report.members["mongo2"]
    assert (member.status, member.rolled_back, member.data_bytes) == ("failed", True, 10 * MIB)
    assert member.initial_sync_seconds is None and member.conversion_seconds is None and member.copy_rate is None
    assert report.rates() == [2.0]  # mongo3 only: the halted primary's details hold no times


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r.pop("outcome"), "no outcome"),
        (lambda r: r.update(members=list(r["members"].values())), "members: a mapping"),
        (lambda r: r["members"]["mongo1"]["details"]["seconds"].pop("total"), "details.seconds.total is missing"),
        (lambda r: r["members"]["mongo1"]["details"].pop("seconds"), "details.seconds.total is missing"),
        (lambda r: r["members"]["mongo1"]["details"].update(data_bytes="31457280"), "data_bytes: a number expected"),
        (lambda r: r["members"]["mongo1"].update(details=None), "mongo1.details: a mapping expected"),
    ],
)
def test_another_shape_is_refused_with_the_field(damage: Any, message: str) -> None:
    report = report_of("size1", HOSTS_1, {h: converted(30 * MIB, 12.0) for h in HOSTS_1})
    damage(report)
    with pytest.raises(ReportShapeError, match=message):
        ConversionReport.parse(report)


def test_the_old_report_shape_is_refused() -> None:
    old = {"members": [{"host": "mongo1", "conversion_seconds": 20.0, "initial_sync_seconds": 12.0}]}
    with pytest.raises(ReportShapeError, match="no outcome"):
        ConversionReport.parse(old)


def test_results_table_ratios_and_fit() -> None:
    by_set = size_reports(lambda mib: 4 + mib / 8)
    n4 = ["n4s1", "n4s2", "n4s3", "n4s4"]
    by_set["N=4"] = uniform("n4s1", HOSTS_1, 40, 16.0)
    walls = {"size2": 100.0, "N=4": 130.0, "size1": 60.0}
    lines = results_lines(
        {"size1": 4.0, "size2": 16.0},
        16.0,
        {4: n4},
        {"size1": {"mib": 4.0}},
        walls,
        by_set,
        {"mongo4": 11.0},
    )
    text = "\n".join(lines)
    row = next(line for line in lines if " mongo4 " in line).split()
    # set, docs MiB, member, wave, status, data MiB, sync s, mongod s, member s, MiB/s
    assert row == ["size2", "-", "mongo4", "2", "done", "40.0", "9.0", "11", "12.5", "4.4"]
    assert "marginal rate 8.0 MiB/s, a = 4.0 s" in text
    assert "    4    130.0s       1.30  n4s1,n4s2,n4s3,n4s4" in lines
    # in wave order, the primary last
    assert [line.split()[2] for line in lines if line.startswith("  size1 ") and " done " in line] == [
        "mongo2",
        "mongo3",
        "mongo1",
    ]
    assert "mean time per member: 19.5 s at N=4 vs 12.5 s at N=1" in text
    assert "goal: T(4)/T(1) <= 1.5: met" in text
    assert "16 MiB, 4 syncs at once (the fleet shares 2 cores): median 2.5 MiB/s, lowest 2.5 MiB/s" in text


def test_playbook_vars_are_the_roles_and_the_playbooks() -> None:
    args = bench_conversion.playbook_args("replset_size1", bench_conversion.Path("/tmp/r.json"))
    assert args == [
        "-e",
        "kmip_conversion_hosts=replset_size1",
        "-e",
        "kmip_conversion_report_path=/tmp/r.json",
        "-e",
        "kmip_conversion_install_prereqs=false",
        "-e",
        "kmipops_python_interpreter=/opt/kmipops/venv/bin/python",
    ]
