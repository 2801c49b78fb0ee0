# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 11, section 4: the fleet playbook (playbooks/rotate_master_key.yml) under faults, nothing lost.

Each scenario runs the collection's fleet playbook as an operator would, on the fault fleet
(faultlab.py: sets cfg and rs1, two KMIP servers sharing one database), under the harness's
writer (retryable w:majority inserts, every acknowledged _id recorded) and sampler (every
member's hello every 250 ms), breaks something before or during the run, and judges from
outside the collection: molecule/shared/files/fleet_check.py (every acknowledged write on every
member, never two members of a set down, elections from replSetGetStatus.term, keys from
storage.bson, mongod's log and the KMS, configs, orphan keys) and the members' own state (key in
storage.bson, mongod's MainPID, mongod.conf, the dbPath). The role's JSON report
(kmip_rotation_report_path) must name what it stopped on.

The scenarios share one fleet and leave it healthy (every member up, both KMS up) for the next.
Run: `make molecule-rotation-faults` (takes `flock /tmp/kmipops-lock-molecule-faults`).
"""

from __future__ import annotations

import time
from typing import Any

from faultlab import SETS, FaultFleet, Run, log, poll, storage_key_id, untouched

HOSTS = [host for members in SETS.values() for host in members]
ALL_CHECKS = ["writes", "availability", "elections", "keys", "configs", "orphans"]
SAFETY_CHECKS = ["writes", "availability"]


def judged(fleet: FaultFleet, before: str, after: str, label: str, checks: list[str], **options: Any) -> None:
    """fleet_check.py must pass every check asked for."""
    result = fleet.check(before, after, label, checks, **options)
    failed = {name: check["problems"] for name, check in result.get("checks", {}).items() if not check["ok"]}
    assert result["rc"] == 0 and not failed, f"fleet_check ({label}): {failed or result}"


def primaries(fleet: FaultFleet) -> dict[str, str]:
    return fleet.roles()["primaries"]


def secondaries(fleet: FaultFleet, replset: str) -> list[str]:
    members = fleet.roles()["members"]
    return [host for host in SETS[replset] if members.get(host) == "SECONDARY"]


def terms(fleet: FaultFleet, label: str) -> dict[str, int]:
    import json

    data = json.loads((fleet.rotation_dir / f"replset-{label}.json").read_text())
    return {name: data["sets"][name]["term"] for name in SETS}


def begin(fleet: FaultFleet, label: str) -> dict[str, dict[str, Any]]:
    """A healthy fleet, the writer and the sampler running, the snapshot 'before'."""
    fleet.wait_healthy()
    fleet.start_background(label)
    return fleet.snapshot(f"{label}-before")


def end(fleet: FaultFleet, label: str) -> dict[str, dict[str, Any]]:
    """Writer and sampler stopped after the fleet is healthy again; the snapshot 'after'."""
    fleet.wait_healthy()
    after = fleet.snapshot(f"{label}-after")
    fleet.stop_background()
    return after


def report(run: Run) -> dict[str, Any]:
    assert run.report is not None, f"no JSON report written (rc {run.rc}); output {run.log_file}"
    return run.report


def member_entry(run: Run, host: str) -> dict[str, Any]:
    """The role's report on one member (status, reason, details), which must exist."""
    members = report(run).get("members", {})
    assert host in members, f"the report has no entry for {host}: {sorted(members)}"
    return members[host]


def assert_member_reported(run: Run, host: str, statuses: tuple[str, ...], *words: str) -> None:
    """The report gives ``host`` one of ``statuses`` and a reason (containing ``words``)."""
    entry = member_entry(run, host)
    text = f"{entry.get('reason') or ''} {entry.get('details') or ''}"
    assert entry["status"] in statuses and entry.get("reason"), f"{host} reported as {entry}"
    missing = [word for word in words if word not in text]
    assert not missing, f"{host}: the report does not say {missing}: {entry}"


def problems_of(run: Run) -> list[dict[str, Any]]:
    return list(report(run).get("problems") or [])


def test_both_kms_unreachable_at_preflight(fleet: FaultFleet) -> None:
    """Both KMS dead before the run: pre-flight fails, nothing is touched, the report names sets and members."""
    label = "preflight"
    before = begin(fleet, label)
    try:
        for host in ("kmip1", "kmip2"):
            fleet.kill_kms(host)
        run = fleet.rotate(label)
        state = fleet.members_state()
    finally:
        for host in ("kmip1", "kmip2"):
            fleet.start_kms(host)
    assert run.rc != 0, "the rotation succeeded with both KMS dead"
    touched = {host: why for host in HOSTS if (why := untouched(before[host], state[host]))}
    assert not touched, f"members touched although pre-flight failed: {touched}"
    assert report(run)["outcome"] == "preflight_failed", report(run)["lines"]
    problems = problems_of(run)
    named = {(p.get("set_name"), p.get("host")) for p in problems}
    expected = {(name, host) for name, hosts in SETS.items() for host in hosts}
    assert expected <= named, f"pre-flight problems name {sorted(named)}, not every set/member {sorted(expected)}"
    end(fleet, label)
    assert terms(fleet, f"{label}-after") == terms(fleet, f"{label}-before"), "an election happened"
    judged(fleet, f"{label}-before", f"{label}-after", label, [*SAFETY_CHECKS, "elections"], expect_elections=0)


def test_first_kms_killed_mid_rotation(fleet: FaultFleet) -> None:
    """kmip1 dies when the first member goes down: every member fails over to kmip2, the rotation completes."""
    label = "kms1-killed"
    begin(fleet, label)
    try:
        with fleet.rotation(label) as process:
            victim = fleet.wait_first_member_down(process)
            fleet.kill_kms("kmip1")
            log(f"kmip1 killed while {victim} was down")
            run = fleet.finish(process)
    finally:
        fleet.start_kms("kmip1")
    assert run.rc == 0, f"the rotation failed after kmip1 died: {run.output[-3000:]}"
    assert report(run)["outcome"] == "complete", report(run)["lines"]
    end(fleet, label)
    failovers = [
        host
        for host in HOSTS
        if fleet.exec(host, "grep", "-c", '"id":29117', "/var/log/mongodb/mongod.log", check=False).strip()
        not in ("", "0")
    ]
    assert failovers, "no member logged a KMIP session failure (29117): the fault did not hit the rotation"
    judged(fleet, f"{label}-before", f"{label}-after", label, ALL_CHECKS, expect_elections=1, expect_each_down=True)


def test_both_kms_killed_mid_rotation(fleet: FaultFleet) -> None:
    """Both KMS die mid-rotation: the sets halt, at most the one down member per set (reported), data intact;
    the re-run once the KMS is back finishes the job."""
    label = "kms-both-killed"
    begin(fleet, label)
    started_at = time.time()
    try:
        with fleet.rotation(label) as process:
            victim = fleet.wait_first_member_down(process)
            fleet.kill_kms("kmip1")
            fleet.kill_kms("kmip2")
            log(f"both KMS killed while {victim} was down")
            run = fleet.finish(process)
        halted_at = time.time()
        assert run.rc != 0, "the rotation succeeded with both KMS dead"
        assert report(run)["outcome"] == "halted", report(run)["lines"]
        down = {name: [h for h in members if fleet.member_down([h])] for name, members in SETS.items()}
        log(f"members down after the halt: {down}")
        for name, hosts in down.items():
            assert len(hosts) <= 1, f"{name}: {hosts} down at once after the halt"
            for host in hosts:
                assert_member_reported(run, host, ("failed",))
        assert_member_reported(run, victim, ("failed",))
        for name, info in report(run)["sets"].items():
            if any(member_entry(run, h)["status"] == "failed" for h in SETS[name]):
                assert info["status"] == "halted", f"{name}: a member failed but the set is {info['status']}"
    finally:
        for host in ("kmip1", "kmip2"):
            fleet.start_kms(host)
    # the documented recovery: the member left down is started again (on whichever key its
    # storage.bson names), then the operator re-runs the playbook
    for host in HOSTS:
        if fleet.member_down([host]):
            fleet.start_member(host)
    fleet.wait_healthy()
    # selection by key age: the members rotated by the halted run (keys younger than that run) are
    # skipped, every other member (keys from before the scenario) is rotated
    min_age_days = (time.time() - started_at) / 86400
    log(
        f"re-run with kmip_rotation_min_key_age_days={min_age_days:.6f}, {time.time() - halted_at:.0f} s after the halt"
    )
    rerun = fleet.rotate(f"{label}-rerun", f"--extra-vars=kmip_rotation_min_key_age_days={min_age_days:.6f}")
    assert rerun.rc == 0, f"the re-run did not finish: {rerun.output[-3000:]}"
    assert report(rerun)["outcome"] in ("complete", "incomplete"), report(rerun)["lines"]
    rotated_before = [h for h in HOSTS if member_entry(run, h)["status"] == "done"]
    for host in rotated_before:
        assert_member_reported(rerun, host, ("skipped",), "younger than")
    end(fleet, label)
    # over both runs: every member rotated exactly once, one election per set, nothing lost, never
    # two down; a rotation stopped by the KMS's death may leave a registered key nobody uses
    judged(
        fleet,
        f"{label}-before",
        f"{label}-after",
        label,
        ["writes", "availability", "elections", "keys", "configs"],
        expect_elections=1,
    )


def test_member_that_does_not_come_back(fleet: FaultFleet) -> None:
    """A secondary of rs1 cannot start after its rotation: rs1 halts, its other members and primary are
    untouched after that point, the member is reported; cfg is not held back."""
    label = "no-comeback"
    victim = secondaries(fleet, "rs1")[0]
    primary_before = primaries(fleet)
    dropin = "/etc/systemd/system/mongod.service.d/zz-kmipops-fault.conf"
    fleet.exec(victim, "mkdir", "-p", "/etc/systemd/system/mongod.service.d")
    before = begin(fleet, label)
    try:
        # systemd refuses every later start of mongod on this host (the rotation itself runs mongod
        # directly, so it completes)
        fleet.exec(victim, "sh", "-c", f"printf '[Service]\\nExecStartPre=/bin/false\\n' > {dropin}")
        fleet.exec(victim, "systemctl", "daemon-reload")
        run = fleet.rotate(label)
        state = fleet.members_state()
        still_down = fleet.member_down([victim])
    finally:
        fleet.exec(victim, "rm", "-f", dropin)
        fleet.exec(victim, "systemctl", "daemon-reload")
    assert run.rc != 0, "the rotation reported success with a member that did not come back"
    assert still_down, f"{victim} is up although systemd could not start it"
    assert_member_reported(run, victim, ("failed",))
    assert report(run)["sets"]["rs1"]["status"] == "halted", report(run)["lines"]
    assert report(run)["sets"]["cfg"]["status"] == "complete", report(run)["lines"]
    rs1_primary = primary_before["rs1"]
    assert not untouched(before[rs1_primary], state[rs1_primary]), f"rs1's primary {rs1_primary} was touched"
    for host in SETS["rs1"]:
        # the other secondary: rotated before the victim (its own wave) or untouched
        if host not in (victim, rs1_primary) and storage_key_id(before[host]) == storage_key_id(state[host]):
            assert not untouched(before[host], state[host]), f"{host} touched after the halt"
    fleet.start_member(victim)
    end(fleet, label)
    after_terms, before_terms = terms(fleet, f"{label}-after"), terms(fleet, f"{label}-before")
    assert after_terms["rs1"] == before_terms["rs1"], "rs1's primary was stepped down after the halt"
    # cfg went on: every member rotated, one election
    judged(fleet, f"{label}-before", f"{label}-after", label, SAFETY_CHECKS)
    judged(fleet, f"{label}-before", f"{label}-after", label, ["elections", "keys", "configs"], sets="cfg")


def test_no_electable_secondary(fleet: FaultFleet) -> None:
    """rs1's secondaries have priority 0: its primary is left alone and reported; cfg rotates fully."""
    label = "no-electable"
    rs1_primary = primaries(fleet)["rs1"]
    others = [host for host in SETS["rs1"] if host != rs1_primary]
    fleet.set_priorities("rs1", dict.fromkeys(others, 0.0))
    try:
        before = begin(fleet, label)
        run = fleet.rotate(label)
        state = fleet.members_state()
        after = end(fleet, label)
    finally:
        fleet.set_priorities("rs1", dict.fromkeys(others, 1.0))
    assert not untouched(before[rs1_primary], state[rs1_primary]), f"rs1's primary {rs1_primary} was touched"
    assert not untouched(before[rs1_primary], after[rs1_primary])
    assert_member_reported(run, rs1_primary, ("skipped", "failed"), "electable")
    assert report(run)["sets"]["cfg"]["status"] == "complete", report(run)["lines"]
    assert terms(fleet, f"{label}-after")["rs1"] == terms(fleet, f"{label}-before")["rs1"], "rs1 held an election"
    judged(fleet, f"{label}-before", f"{label}-after", label, SAFETY_CHECKS)
    judged(fleet, f"{label}-before", f"{label}-after", label, ["elections", "keys", "configs"], sets="cfg")


def test_primary_moves_before_the_last_wave(fleet: FaultFleet) -> None:
    """The operator steps rs1's primary down while its wave-0 secondary is down: the other secondary (planned for
    wave 1) is elected. The role must re-derive the waves: the old primary, a secondary now, is rotated without a
    step-down, the new primary is deferred to the last wave and stepped down there - the role's only election in rs1
    (rs1's term grows by 2: the operator's election and the role's); cfg is not affected (1 election)."""
    label = "primary-moves"
    rs1_primary = primaries(fleet)["rs1"]
    rs1_secondaries = secondaries(fleet, "rs1")
    begin(fleet, label)
    with fleet.rotation(label) as process:

        def rs1_member_down() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"the rotation ended (rc {process.returncode}) before an rs1 member went down")
            return fleet.member_down(rs1_secondaries)

        first = poll(rs1_member_down, 1200, "rs1's wave-0 secondary to go down", interval=0.1)
        elected = next(host for host in rs1_secondaries if host != first)
        fleet.step_down(rs1_primary, seconds=30)
        log(f"{rs1_primary} stepped down by the operator while {first} was down; expecting {elected} elected")
        poll(lambda: primaries(fleet).get("rs1") == elected, 120, f"{elected} elected in rs1")
        run = fleet.finish(process)
    assert run.rc == 0, f"the rotation failed after the primary moved: {run.output[-3000:]}"
    assert report(run)["outcome"] == "complete", report(run)["lines"]
    old_primary, new_primary = member_entry(run, rs1_primary), member_entry(run, elected)
    assert old_primary["status"] == "done" and new_primary["status"] == "done", (old_primary, new_primary)
    assert old_primary["role"] == "secondary" and old_primary.get("planned", {}).get("role") == "primary", old_primary
    assert not old_primary["details"].get("stepped_down"), f"{rs1_primary} was stepped down again: {old_primary}"
    assert new_primary["role"] == "primary" and new_primary["details"].get("stepped_down"), new_primary
    waves = {host: member_entry(run, host)["wave"] for host in SETS["rs1"]}
    assert waves[elected] == max(waves.values()) and waves[rs1_primary] < waves[elected], waves
    stepped = [h for h in SETS["rs1"] if member_entry(run, h)["details"].get("stepped_down")]
    assert stepped == [elected], f"rs1 members stepped down by the role: {stepped}"
    end(fleet, label)
    rs1_elections = terms(fleet, f"{label}-after")["rs1"] - terms(fleet, f"{label}-before")["rs1"]
    assert rs1_elections == 2, f"rs1: {rs1_elections} elections, expected the operator's and the role's"
    judged(fleet, f"{label}-before", f"{label}-after", label, ["writes", "availability", "keys", "configs"])
    judged(fleet, f"{label}-before", f"{label}-after", label, ["elections"], sets="cfg", expect_elections=1)


def test_leftover_key_db_rotation(fleet: FaultFleet) -> None:
    """A leftover <dbPath>/key.db.rotation on one secondary: that member is not touched, the directory is
    not removed behind the operator's back, the report names member and directory; nothing lost."""
    label = "leftover"
    victim = secondaries(fleet, "cfg")[-1]
    leftover = "/var/lib/mongodb/key.db.rotation"
    fleet.exec(victim, "install", "-d", "-o", "mongod", "-g", "mongod", "-m", "0700", leftover)
    try:
        before = begin(fleet, label)
        run = fleet.rotate(label)
        state = fleet.members_state()
        end(fleet, label)
    finally:
        fleet.exec(victim, "rm", "-rf", leftover)
    assert not untouched(before[victim], state[victim]), (
        f"{victim} was touched: {untouched(before[victim], state[victim])}"
    )
    assert "key.db.rotation" in state[victim]["dbpath"], "the leftover key.db.rotation was removed without the operator"
    named = [p for p in problems_of(run) if p.get("host") == victim] or [member_entry(run, victim)]
    assert "key.db.rotation" in str(named), f"the report does not tell about {victim}'s key.db.rotation: {named}"
    judged(fleet, f"{label}-before", f"{label}-after", label, SAFETY_CHECKS)


def test_fleet_healthy_at_the_end(fleet: FaultFleet) -> None:
    """After every fault the fleet is healthy again, both KMS up, every member on its own key."""
    fleet.wait_healthy()
    state = fleet.members_state()
    keys = {host: storage_key_id(member) for host, member in state.items()}
    assert all(keys.values()) and len(set(keys.values())) == len(keys), keys
    poll(lambda: not fleet.member_down(HOSTS), 60, "every member up")
