# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_replset_info in-process, against a scripted replica set behind a fake pymongo client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import waiter
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod import member
from ansible_collections.kmipops.psmdb.plugins.modules import mongod_replset_info
from unit.plugins.module_utils._replset.fakes import Member, ReplicaSet
from unit.utils.module_runner import run_module

DOWN = ("(not reachable/healthy)", 0.0, None)
RETURNS = {
    "set_name",
    "primary",
    "term",
    "members",
    "self",
    "healthy",
    "majority_survives_one_down",
    "max_lag_seconds_seen",
    "oplog_window_seconds",
    "waited_seconds",
}


class Clock:
    """time.monotonic and time.sleep for the waiter: sleeping advances the clock and runs ``on_sleep``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[Any] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()


@pytest.fixture
def rs(monkeypatch: pytest.MonkeyPatch) -> ReplicaSet:
    replica_set = ReplicaSet(Member("db1:27017", "PRIMARY"), Member("db2:27017"), Member("db3:27017"))
    monkeypatch.setattr(member, "MongoClient", replica_set.mongo_client)
    return replica_set


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(waiter, "time", fake)
    return fake


def run(capsys: pytest.CaptureFixture[str], check: bool = False, **args: Any) -> dict[str, Any]:
    return run_module(mongod_replset_info, {"login_host": "db2", **args}, capsys, check=check)


def test_reads_the_set_from_its_primary(rs: ReplicaSet, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys)
    assert not result.get("failed"), result
    assert set(result) >= RETURNS and result["changed"] is False
    assert result["primary"] == "db1:27017" and result["self"] == "db2:27017" and result["set_name"] == "rs0"
    assert result["healthy"] is True and result["majority_survives_one_down"] is True
    assert result["waited_seconds"] == 0 and result["condition_met"] is True
    assert [m["is_self"] for m in result["members"]] == [False, True, False]
    assert result["members"][1] == {
        "name": "db2:27017",
        "state_str": "SECONDARY",
        "health": True,
        "lag_seconds": 0.0,
        "priority": 1.0,
        "votes": 1,
        "hidden": False,
        "arbiter_only": False,
        "is_self": True,
    }


def test_member_caught_up_waits_for_the_primary_not_for_the_member(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    """The member is up and calls itself SECONDARY; the primary still sees it down, then behind."""
    primary = rs.members["db1:27017"]
    primary.sees["db2:27017"] = DOWN
    clock.on_sleep = [
        lambda: primary.sees.update({"db2:27017": ("SECONDARY", 1.0, 40)}),
        lambda: primary.sees.update({"db2:27017": ("SECONDARY", 1.0, 3)}),
    ]
    result = run(capsys, wait_for="member_caught_up", max_lag_seconds=5, wait_sleep=2)
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 4 and result["condition_met"] is True
    assert result["members"][1]["lag_seconds"] == 3.0 and result["max_lag_seconds_seen"] == 3.0


def test_member_down_the_seeds_carry_the_wait(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    rs.members["db2:27017"].down = True
    rs.members["db1:27017"].sees["db2:27017"] = DOWN

    def back() -> None:
        rs.members["db2:27017"].down = False
        rs.members["db1:27017"].sees.pop("db2:27017")

    clock.on_sleep = [lambda: None, back]
    result = run(capsys, member="db2:27017", seeds=["db3:27017", "db1:27017"], wait_for="member_caught_up")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 2 and result["self"] == "db3:27017"


def test_timeout_fails_with_the_last_view(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    result = run(capsys, wait_for="member_caught_up", wait_timeout=10, wait_sleep=3)
    assert result["failed"] is True and result["error_kind"] == "timeout"
    assert "db2:27017 is down" in result["msg"] and "wait_timeout 10s" in result["msg"]
    assert result["waited_seconds"] == 10 and "db2:27017 down" in result["last_observed"]
    last = result["last_view"]
    assert set(last) >= RETURNS and last["primary"] == "db1:27017" and last["healthy"] is False
    assert last["members"][1]["health"] is False and last["members"][1]["lag_seconds"] is None


def test_a_long_startup2_is_waited_out(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    """Down, then up syncing (STARTUP2) for long, then SECONDARY: a long initial sync is no failure."""
    primary = rs.members["db1:27017"]
    primary.sees["db2:27017"] = DOWN
    syncing = [lambda: primary.sees.update({"db2:27017": ("STARTUP2", 1.0, None)})] + [lambda: None] * 10
    clock.on_sleep = [lambda: None, *syncing, lambda: primary.sees.update({"db2:27017": ("SECONDARY", 1.0, 1)})]
    result = run(capsys, wait_for="member_caught_up", wait_sleep=2)
    assert not result.get("failed"), result
    assert result["condition_met"] is True and result["waited_seconds"] == 26


def test_primary_not_member_waits_for_another_primary(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    def elect_db3() -> None:
        rs.members["db1:27017"].state = "SECONDARY"
        rs.members["db3:27017"].state = "PRIMARY"

    clock.on_sleep = [elect_db3]
    result = run(capsys, login_host="db1", wait_for="primary", not_member=True)
    assert not result.get("failed"), result
    assert result["primary"] == "db3:27017" and result["waited_seconds"] == 1


def test_set_healthy_waits_for_every_member(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    rs.members["db1:27017"].sees["db3:27017"] = ("SECONDARY", 1.0, 30)
    clock.on_sleep = [lambda: rs.members["db1:27017"].sees.clear()]
    result = run(capsys, wait_for="set_healthy")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 1 and result["healthy"] is True


def test_check_mode_reads_once_and_does_not_wait(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    result = run(capsys, check=True, wait_for="member_caught_up")
    assert not result.get("failed"), result
    assert result["condition_met"] is False and result["waited_seconds"] == 0 and clock.now == 0


def test_unknown_member_is_an_invalid_option(rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, member="db9:27017", wait_for="member_caught_up")
    assert result["failed"] is True and result["error_kind"] == "invalid_option" and result["option"] == "member"
    assert "db1:27017, db2:27017, db3:27017" in result["msg"] and clock.now == 0


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ({"max_lag_seconds": -1}, "max_lag_seconds"),
        ({"wait_timeout": 0, "wait_for": "primary"}, "wait_timeout"),
        ({"wait_sleep": 0.0}, "wait_sleep"),
        ({"not_member": True, "wait_for": "set_healthy"}, "not_member"),
        ({"seeds": ["db1:x"]}, "seeds"),
    ],
)
def test_bad_options_fail_before_any_connection(
    rs: ReplicaSet, capsys: pytest.CaptureFixture[str], args: dict[str, Any], option: str
) -> None:
    result = run(capsys, **args)
    assert result["failed"] is True and result["error_kind"] == "invalid_option" and result["option"] == option
    assert rs.connections == []


def test_nothing_answers_without_a_wait_is_unreachable(rs: ReplicaSet, capsys: pytest.CaptureFixture[str]) -> None:
    for m in rs.members.values():
        m.down = True
    result = run(capsys, seeds=["db1:27017"])
    assert result["failed"] is True and result["error_kind"] == "unreachable" and result["member"] == "db2:27017"


def test_nothing_answers_while_waiting_is_a_poll_result(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    for m in rs.members.values():
        m.down = True

    def all_up() -> None:
        for m in rs.members.values():
            m.down = False

    clock.on_sleep = [lambda: None, all_up]
    result = run(capsys, seeds=["db1:27017"], wait_for="set_healthy")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 2


def test_wrong_credentials_fail_even_while_waiting(
    rs: ReplicaSet, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    rs.members["db2:27017"].auth_failed = True
    result = run(capsys, wait_for="set_healthy", login_user="admin", login_password="Sekr1t")
    assert result["failed"] is True and result["error_kind"] == "auth_failed" and clock.now == 0
    assert "Sekr1t" not in str(result)


# -- watch_service: the member's own unit, polled with the set (fail fast when mongod is not running)

SECRET_PW = "Dummy-Watch-Pw-7"


class Systemd:
    """Fake systemctl and journalctl on PATH; ``state`` is what systemctl show prints next."""

    def __init__(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp_path / "bin"
        self.dir.mkdir()
        self.state_file = tmp_path / "unit-state"
        self.set("active", "running", main_pid=812)
        systemctl = self.dir / "systemctl"
        systemctl.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "systemctl-calls"}\ncat {self.state_file}\n')
        journalctl = self.dir / "journalctl"
        journalctl.write_text(
            "#!/bin/sh\n"
            "echo '2026-12-02T16:00:00+0000 db2 systemd[1]: Started mongod.service.'\n"
            f"echo '2026-12-02T16:00:01+0000 db2 mongod[9]: clientCertificatePassword: {SECRET_PW}'\n"
            "echo '2026-12-02T16:00:02+0000 db2 systemd[1]: mongod.service: Failed with result exit-code.'\n"
        )
        for tool in (systemctl, journalctl):
            tool.chmod(0o755)
        monkeypatch.setenv("PATH", f"{self.dir}:/usr/bin:/bin")
        self.calls_file = tmp_path / "systemctl-calls"

    def set(self, active: str, sub: str, main_pid: int = 0, result: str = "success", status: int = 0) -> None:
        self.state_file.write_text(
            f"LoadState=loaded\nActiveState={active}\nSubState={sub}\nMainPID={main_pid}\nRestart=no\n"
            f"Result={result}\nExecMainStatus={status}\nExecMainCode={1 if status or result != 'success' else 0}\n"
        )

    def calls(self) -> int:
        return len(self.calls_file.read_text().splitlines()) if self.calls_file.exists() else 0


@pytest.fixture
def systemd(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Systemd:
    return Systemd(tmp_path, monkeypatch)


def member_conf(tmp_path: Any) -> str:
    """A member's mongod.conf with a KMIP password, and a log whose last run failed on the KMS."""
    log = tmp_path / "mongod.log"
    lines = [
        {"t": {"$date": "2026-12-02T16:00:00.000+00:00"}, "s": "I", "id": 4615611, "msg": "MongoDB starting",
         "attr": {"pid": 9}},
        {"t": {"$date": "2026-12-02T16:00:00.100+00:00"}, "s": "I", "id": 21951, "msg": "Options set by command line",
         "attr": {"options": {"security": {"kmip": {"clientCertificatePassword": SECRET_PW}}}}},
        {"t": {"$date": "2026-12-02T16:00:01.000+00:00"}, "s": "E", "id": 29120, "msg": "Encryption error",
         "attr": {"error": {"what": "failed to connect to the KMIP server",
                            "reason": f"kmip1:5696 refused ({SECRET_PW})"}}},
        {"t": {"$date": "2026-12-02T16:00:01.100+00:00"}, "s": "I", "id": 23138, "msg": "Shutting down",
         "attr": {"exitCode": 1}},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    conf = tmp_path / "mongod.conf"
    conf.write_text(
        f"systemLog:\n  destination: file\n  path: {log}\nstorage:\n  dbPath: {tmp_path}\n"
        "security:\n  enableEncryption: true\n  kmip:\n    serverName: kmip1\n"
        f"    clientCertificateFile: /etc/c.pem\n    clientCertificatePassword: {SECRET_PW}\n"
    )
    return str(conf)


def test_a_member_whose_unit_stops_ends_the_wait_at_once(
    rs: ReplicaSet, clock: Clock, systemd: Systemd, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """mongod exits seconds after systemctl start (no KMS): the wait ends at that poll, not at wait_timeout."""
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    clock.on_sleep = [lambda: None, lambda: systemd.set("failed", "failed", result="exit-code", status=1)]
    result = run(
        capsys,
        login_host="db1",
        member="db2:27017",
        wait_for="member_caught_up",
        wait_timeout=600,
        watch_service="mongod.service",
        watch_config=member_conf(tmp_path),
    )
    text = json.dumps(result)
    assert result["failed"] is True and result["error_kind"] == "member_stopped", result
    assert clock.now == 2 and result["waited_seconds"] == 2 and systemd.calls() == 3
    assert "db2:27017: mongod is not running" in result["msg"] and "mongod.service is failed" in result["msg"]
    assert "result exit-code" in result["msg"] and "status 1" in result["msg"]
    assert "failed to connect to the KMIP server" in result["msg"]
    assert result["service"]["active_state"] == "failed" and result["service"]["exec_main_status"] == 1
    log = result["mongod_log"]
    assert log["last_run"]["outcome"] == "encryption_error" and log["last_run"]["exit_code"] == 1
    assert any(" 29120 " in line for line in log["lines"]) and not any("21951" in line for line in log["lines"])
    assert result["journal"][-1].endswith("Failed with result exit-code.") and len(result["journal"]) == 3
    assert result["last_view"]["members"][1]["health"] is False
    assert SECRET_PW not in text, "a secret reached the result"


def test_a_running_or_restarting_unit_keeps_the_wait(
    rs: ReplicaSet, clock: Clock, systemd: Systemd, capsys: pytest.CaptureFixture[str]
) -> None:
    primary = rs.members["db1:27017"]
    primary.sees["db2:27017"] = DOWN
    clock.on_sleep = [
        lambda: systemd.set("activating", "auto-restart", result="exit-code", status=1),
        lambda: (systemd.set("active", "running", main_pid=900), primary.sees.clear()),
    ]
    result = run(capsys, login_host="db1", member="db2:27017", wait_for="member_caught_up", watch_service="mongod")
    assert not result.get("failed"), result
    assert result["waited_seconds"] == 2 and systemd.calls() == 3


def test_a_timeout_with_a_watch_returns_the_unit(
    rs: ReplicaSet, clock: Clock, systemd: Systemd, capsys: pytest.CaptureFixture[str]
) -> None:
    rs.members["db1:27017"].sees["db2:27017"] = DOWN
    result = run(
        capsys, login_host="db1", member="db2:27017", wait_for="member_caught_up", wait_timeout=3, watch_service="m"
    )
    assert result["error_kind"] == "timeout" and result["service"]["active_state"] == "active"


def test_an_unknown_unit_is_an_invalid_option(
    rs: ReplicaSet, clock: Clock, systemd: Systemd, capsys: pytest.CaptureFixture[str]
) -> None:
    systemd.state_file.write_text("LoadState=not-found\nActiveState=inactive\n")
    result = run(capsys, member="db2:27017", wait_for="member_caught_up", watch_service="mongdo.service")
    assert result["error_kind"] == "invalid_option" and result["option"] == "watch_service" and clock.now == 0


def test_no_watch_in_check_mode(
    rs: ReplicaSet, clock: Clock, systemd: Systemd, capsys: pytest.CaptureFixture[str]
) -> None:
    systemd.set("failed", "failed", result="exit-code", status=1)
    result = run(capsys, check=True, wait_for="member_caught_up", watch_service="mongod.service")
    assert not result.get("failed"), result
    assert systemd.calls() == 0


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ({"watch_service": "mongod.service"}, "watch_service"),
        ({"watch_service": "mongod.service", "wait_for": "set_healthy"}, "watch_service"),
        ({"watch_service": " ", "wait_for": "member_caught_up"}, "watch_service"),
        ({"watch_config": "/etc/mongod.conf", "wait_for": "member_caught_up"}, "watch_config"),
    ],
)
def test_watch_options_out_of_place(
    rs: ReplicaSet, capsys: pytest.CaptureFixture[str], args: dict[str, Any], option: str
) -> None:
    result = run(capsys, **args)
    assert result["failed"] is True and result["error_kind"] == "invalid_option" and result["option"] == option
    assert rs.connections == []
