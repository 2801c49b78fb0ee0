# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_waves and fleet_report filters: waves, pre-flight verdicts, report."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kmipops.psmdb.plugins.filter.fleet_report import fleet_report
from ansible_collections.kmipops.psmdb.plugins.filter.fleet_waves import fleet_waves


def member(name: str, state: str = "SECONDARY", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "state_str": state,
        "health": 1,
        "lag_seconds": 0,
        "priority": 1,
        "votes": 1,
        "hidden": False,
        "arbiter_only": False,
        **extra,
    }


def replset(set_name: str, hosts: list[str], primary: int = 0, term: int = 3, **over: Any) -> list[dict[str, Any]]:
    """One record per host of a healthy set; every record holds the primary's view."""
    names = [f"{h}:27017" for h in hosts]
    members = [member(n, "PRIMARY" if i == primary else "SECONDARY") for i, n in enumerate(names)]
    return [
        {
            "host": h,
            "ok": True,
            "set_name": set_name,
            "member": names[i],
            "primary": names[primary],
            "term": term,
            "members": members,
            "majority_survives_one_down": True,
            "selected": True,
            "problems": [],
            **over,
        }
        for i, h in enumerate(hosts)
    ]


def test_waves_run_sets_in_parallel_primaries_last() -> None:
    records = replset("cfg", ["m1", "m2", "m3"], primary=0) + replset("rs1", ["m4", "m5", "m6"], primary=2)
    plan = fleet_waves(records)
    assert plan["ok"], plan["problems"]
    assert plan["wave_count"] == 3
    assert [sorted(m["host"] for m in w["members"]) for w in plan["waves"]] == [
        ["m2", "m4"],
        ["m3", "m5"],
        ["m1", "m6"],
    ]
    assert plan["hosts"]["m1"]["role"] == "primary" and plan["hosts"]["m1"]["wave"] == 2
    assert plan["hosts"]["m2"]["peers"] == ["m1:27017", "m3:27017"]
    assert plan["sets"]["rs1"]["primary"] == "m6:27017"
    assert plan["sets"]["cfg"]["not_in_play"] == []


def test_primaries_share_the_last_wave_when_sets_differ_in_size() -> None:
    records = replset("a", ["m1", "m2", "m3", "m4", "m5"]) + replset("b", ["m6", "m7", "m8"])
    plan = fleet_waves(records)
    assert plan["wave_count"] == 5
    assert sorted(m["host"] for m in plan["waves"][4]["members"]) == ["m1", "m6"]
    assert plan["waves"][2]["members"] == [{"host": "m4", "set_name": "a", "member": "m4:27017", "role": "secondary"}]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda ms: ms[1].update(state_str="RECOVERING"), "member is RECOVERING"),
        (lambda ms: ms[1].update(health=0, state_str="(not reachable/healthy)"), "health 0"),
        (lambda ms: ms[2].update(lag_seconds=30), "lags 30 s"),
        (lambda ms: ms[1].update(state_str="PRIMARY"), "has 2 primaries"),
        (lambda ms: ms[0].update(state_str="SECONDARY"), "has 0 primaries"),
    ],
)
def test_preflight_names_set_and_member(change: Any, expected: str) -> None:
    records = replset("rs1", ["m1", "m2", "m3"])
    change(records[0]["members"])  # the records share the view
    plan = fleet_waves(records)
    assert not plan["ok"]
    assert any(expected in p["problem"] and p["set_name"] == "rs1" for p in plan["problems"]), plan["problems"]
    assert any(line.startswith("PROBLEM rs1/") for line in plan["lines"])


def test_majority_unreachable_host_and_caller_problems() -> None:
    records = replset("rs1", ["m1", "m2", "m3"], majority_survives_one_down=False)
    records[1]["problems"] = ["KMIP servers as this member reaches them: down"]
    records.append({"host": "m9", "ok": False, "error": "connection refused"})
    plan = fleet_waves(records)
    texts = [(p["host"], p["problem"]) for p in plan["problems"]]
    assert any("majority" in t for _, t in texts)
    assert ("m2", "KMIP servers as this member reaches them: down") in texts
    assert any(h == "m9" and "connection refused" in t for h, t in texts)
    assert plan["hosts"]["m9"]["action"] == "skip"


def test_two_hosts_reaching_one_member_is_a_problem() -> None:
    records = replset("rs1", ["m1", "m2", "m3"])
    records[2]["member"] = "m2:27017"
    plan = fleet_waves(records)
    assert any("both reach member m2:27017" in p["problem"] for p in plan["problems"])
    assert "m3:27017" in plan["sets"]["rs1"]["not_in_play"]


def test_selection_skips_and_no_electable_secondary_keeps_the_primary() -> None:
    records = replset("rs1", ["m1", "m2", "m3"])
    records[1]["selected"] = False
    records[1]["skip_reason"] = "key 7 is 1 days old"
    plan = fleet_waves(records)
    assert plan["hosts"]["m2"] == {
        **plan["hosts"]["m2"],
        "action": "skip",
        "reason": "key 7 is 1 days old",
        "wave": None,
    }
    assert [m["host"] for w in plan["waves"] for m in w["members"]] == ["m3", "m1"]

    records = replset("rs1", ["m1", "m2", "m3"])
    for m in records[0]["members"][1:]:
        m["priority"] = 0
    plan = fleet_waves(records)
    assert plan["hosts"]["m1"]["action"] == "skip"
    assert "no electable secondary" in plan["hosts"]["m1"]["reason"]
    assert plan["wave_count"] == 2


def test_every_member_skipped_means_no_wave() -> None:
    records = replset("rs1", ["m1", "m2", "m3"], selected=False, skip_reason="young key")
    plan = fleet_waves(records)
    assert plan["ok"] and plan["wave_count"] == 0 and plan["waves"] == []


def test_bad_input() -> None:
    with pytest.raises(AnsibleFilterError):
        fleet_waves("nope")  # type: ignore[arg-type]
    with pytest.raises(AnsibleFilterError):
        fleet_report([], plan={})


def result(host: str, status: str, start: float, end: float, **details: Any) -> dict[str, Any]:
    return {"host": host, "status": status, "started_at": start, "ended_at": end, "details": details}


def test_report_complete_and_halted() -> None:
    records = replset("cfg", ["m1", "m2", "m3"], term=3) + replset("rs1", ["m4", "m5", "m6"], term=8)
    plan = fleet_waves(records)
    done = [result(h, "done", 100.0, 120.5, summary=f"key a -> b ({h})") for h in ["m1", "m2", "m3"]]
    report = fleet_report(
        [*done, result("m5", "done", 100, 110), result("m6", "failed", 130, 140) | {"reason": "rotate: 29120"}],
        plan=plan,
        terms_after={"cfg": 4, "rs1": 8},
        operation="master key rotation",
        started_at=90.0,
        ended_at=200.0,
    )
    assert report["sets"]["cfg"]["status"] == "complete"
    assert report["sets"]["cfg"]["elections"] == 1
    assert [t["member"] for t in report["sets"]["cfg"]["timeline"]] == ["m2:27017", "m3:27017", "m1:27017"]
    assert report["sets"]["cfg"]["timeline"][0]["seconds"] == 20.5
    assert report["sets"]["rs1"]["status"] == "halted"
    assert "m6" in report["sets"]["rs1"]["halted_reason"] and "29120" in report["sets"]["rs1"]["halted_reason"]
    assert report["members"]["m4"]["status"] == "lost"
    assert report["outcome"] == "halted"
    assert report["seconds"] == 110.0
    assert any("key a -> b (m2)" in line for line in report["lines"])


def test_report_preflight_and_check_mode() -> None:
    records = replset("rs1", ["m1", "m2", "m3"], majority_survives_one_down=False)
    plan = fleet_waves(records)
    report = fleet_report([], plan=plan)
    assert report["outcome"] == "preflight_failed"
    assert report["problems"]
    plan = fleet_waves(replset("rs1", ["m1", "m2", "m3"]))
    report = fleet_report([{"host": h, "status": "planned"} for h in ["m1", "m2", "m3"]], plan=plan)
    assert report["outcome"] == "check_mode"


def test_report_nothing_to_do_when_every_key_is_recent() -> None:
    plan = fleet_waves(replset("rs1", ["m1", "m2", "m3"], selected=False, skip_reason="key is 0.1 days old"))
    report = fleet_report([{"host": h, "status": "skipped"} for h in ["m1", "m2", "m3"]], plan=plan)
    assert report["outcome"] == "nothing_to_do"
    assert report["sets"]["rs1"]["status"] == "nothing_to_do"
    assert len(report["sets"]["rs1"]["skipped"]) == 3
