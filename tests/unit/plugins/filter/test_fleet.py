# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_waves and fleet_report filters: waves, pre-flight verdicts, report."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kmipops.psmdb.plugins.filter.fleet_report import fleet_report
from ansible_collections.kmipops.psmdb.plugins.filter.fleet_turn import fleet_turn
from ansible_collections.kmipops.psmdb.plugins.filter.fleet_waves import fleet_waves
from unit.utils.replset_records import replset


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


# -- fleet_turn: each wave re-derived from the live primaries


def run_turns(plan: dict[str, Any], lives: dict[int, dict[str, str]]) -> list[dict[str, Any]]:
    """Every wave of ``plan`` in turn, each worked member done; ``lives[k]`` = set -> live primary at wave k."""
    results = {
        h: {"host": h, "status": "pending" if e["action"] == "work" else "skipped"} for h, e in plan["hosts"].items()
    }
    turns = []
    primaries: dict[str, str] = {name: info["primary"] for name, info in plan["sets"].items()}
    for k in range(plan["wave_count"]):
        primaries.update(lives.get(k, {}))
        live = [{"host": "x", "ok": True, "set_name": s, "primary": p, "term": 9} for s, p in primaries.items()]
        turn = fleet_turn(plan, k, list(results.values()), live)
        for host in turn["hosts"]:
            results[host]["status"] = "done"
        turns.append(turn)
    assert all(r["status"] in ("done", "skipped") for r in results.values()), results
    return turns


def test_turns_follow_the_plan_when_the_primary_stays() -> None:
    plan = fleet_waves(replset("cfg", ["m1", "m2", "m3"]) + replset("rs1", ["m4", "m5", "m6"], primary=2))
    turns = run_turns(plan, {})
    for turn, planned in zip(turns, plan["waves"], strict=True):
        assert sorted(turn["hosts"]) == sorted(m["host"] for m in planned["members"])
        assert all(not entry["moved"] for entry in turn["hosts"].values()) and turn["lines"] == []
    assert turns[2]["hosts"]["m1"]["role"] == "primary" and turns[2]["hosts"]["m6"]["role"] == "primary"


def test_a_planned_secondary_elected_before_its_turn_is_deferred_and_stepped_down_last() -> None:
    """rs1: m4 primary, m5 then m6 planned; an election makes m6 primary after wave 0: m4 (now a secondary) is
    worked on in wave 1 without a step-down, m6 last, as the primary - the only step-down."""
    plan = fleet_waves(replset("rs1", ["m4", "m5", "m6"], primary=0))
    assert [[m["host"] for m in w["members"]] for w in plan["waves"]] == [["m5"], ["m6"], ["m4"]]
    turns = run_turns(plan, {1: {"rs1": "m6:27017"}})
    assert [list(t["hosts"]) for t in turns] == [["m5"], ["m4"], ["m6"]]
    assert turns[1]["hosts"]["m4"] == {
        "set_name": "rs1",
        "member": "m4:27017",
        "role": "secondary",
        "planned_role": "primary",
        "planned_wave": 2,
        "moved": True,
    }
    assert turns[1]["sets"]["rs1"]["deferred"] == ["m6"]
    assert any("m6:27017 is the primary now, deferred" in line for line in turns[1]["lines"])
    assert turns[2]["hosts"]["m6"]["role"] == "primary" and turns[2]["hosts"]["m6"]["planned_role"] == "secondary"
    assert [e["role"] for t in turns for e in t["hosts"].values()].count("primary") == 1


def test_a_primary_moved_to_a_rotated_member_means_no_step_down() -> None:
    """m5 (done in wave 0) is elected: nobody pending is the primary, m4 goes without a step-down."""
    plan = fleet_waves(replset("rs1", ["m4", "m5", "m6"], primary=0))
    turns = run_turns(plan, {1: {"rs1": "m5:27017"}})
    assert [list(t["hosts"]) for t in turns] == [["m5"], ["m6"], ["m4"]]
    assert all(e["role"] == "secondary" for t in turns for e in t["hosts"].values())


def test_the_primary_moving_in_the_last_wave_is_followed() -> None:
    plan = fleet_waves(replset("rs1", ["m4", "m5", "m6"], primary=0))
    turns = run_turns(plan, {2: {"rs1": "m5:27017"}})
    assert turns[2]["hosts"]["m4"]["role"] == "secondary"


def test_a_smaller_set_waits_for_the_last_wave_and_sets_are_independent() -> None:
    records = replset("a", ["m1", "m2", "m3", "m4", "m5"]) + replset("b", ["m6", "m7", "m8"])
    plan = fleet_waves(records)
    # b's primary moves to m8 (planned for wave 1) before wave 1: b works m6 in wave 1, idles, m8 last
    turns = run_turns(plan, {1: {"b": "m8:27017"}})
    assert [sorted(t["hosts"]) for t in turns] == [["m2", "m7"], ["m3", "m6"], ["m4"], ["m5"], ["m1", "m8"]]
    assert turns[2]["sets"]["b"]["host"] is None and turns[2]["sets"]["b"]["pending"] == ["m8"]
    assert turns[4]["hosts"]["m8"]["role"] == "primary" and turns[4]["hosts"]["m1"]["role"] == "primary"


def test_without_a_live_read_the_plan_decides_and_the_newest_view_wins() -> None:
    plan = fleet_waves(replset("rs1", ["m4", "m5", "m6"], primary=0))
    results = [{"host": h, "status": "pending"} for h in ("m4", "m5", "m6")]
    turn = fleet_turn(plan, 0, results, [{"host": "m5", "ok": False}])
    assert list(turn["hosts"]) == ["m5"] and turn["sets"]["rs1"]["primary_from"] == "plan"
    live = [
        {"host": "m5", "ok": True, "set_name": "rs1", "primary": "m4:27017", "term": 3},
        {"host": "m6", "ok": True, "set_name": "rs1", "primary": "m5:27017", "term": 4},
    ]
    turn = fleet_turn(plan, 0, results, live)
    assert list(turn["hosts"]) == ["m6"] and turn["sets"]["rs1"]["primary"] == "m5:27017"


def test_halted_and_done_members_are_not_pending() -> None:
    plan = fleet_waves(replset("rs1", ["m4", "m5", "m6"], primary=0))
    results = [
        {"host": "m5", "status": "failed"},
        {"host": "m6", "status": "pending"},
        {"host": "m4", "status": "pending"},
    ]
    turn = fleet_turn(plan, 1, results, [])
    assert list(turn["hosts"]) == ["m6"] and turn["sets"]["rs1"]["pending"] == ["m6", "m4"]


def test_fleet_turn_bad_input() -> None:
    with pytest.raises(AnsibleFilterError, match="fleet_waves"):
        fleet_turn({"x": 1}, 0)
    with pytest.raises(AnsibleFilterError, match="wave must be a number"):
        fleet_turn(fleet_waves(replset("rs1", ["m4", "m5", "m6"])), "first")  # type: ignore[arg-type]


def test_report_follows_the_waves_as_worked_and_keeps_a_stopped_member() -> None:
    """A primary that moved: the timeline shows the wave and role each member was worked in, the planned ones kept;
    a member whose mongod stopped keeps its unit state and log lines."""
    plan = fleet_waves(replset("rs1", ["m4", "m5", "m6"], primary=0, term=8))
    moved = {"wave": 1, "role": "secondary", "planned": {"wave": 2, "role": "primary"}}
    stopped = {"service": {"active_state": "failed"}, "mongod_log": ["... 29120 ..."], "journal": []}
    report = fleet_report(
        [
            result("m5", "done", 100, 110),
            result("m4", "done", 120, 130) | moved,
            result("m6", "failed", 140, 150)
            | {"wave": 2, "role": "primary", "error_kind": "member_stopped", "member_stopped": stopped},
        ],
        plan=plan,
        terms_after={"rs1": 10},
    )
    timeline = report["sets"]["rs1"]["timeline"]
    assert [(t["member"], t["wave"], t["role"]) for t in timeline] == [
        ("m5:27017", 0, "secondary"),
        ("m4:27017", 1, "secondary"),
        ("m6:27017", 2, "primary"),
    ]
    assert report["members"]["m4"]["planned"] == {"wave": 2, "role": "primary"}
    assert report["members"]["m6"]["error_kind"] == "member_stopped"
    assert report["members"]["m6"]["member_stopped"]["service"]["active_state"] == "failed"
    assert "planned" not in report["members"]["m5"]
