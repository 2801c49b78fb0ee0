# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.process: one mongod run as the service user, followed to its end or its deadline."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.errors import ServiceUserError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import process_facts
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.process import (
    MongodRunner,
    RunAs,
    exit_meaning,
)
from unit.utils.rotation_member import service_user_name

START = '{"id":4615611,"msg":"MongoDB starting","attr":{"pid":%s}}'


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory the service user can reach (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="kmipops-unit-process-"))
    root.chmod(0o777)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def script(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text(f'#!/bin/sh\nLOG={directory}/mongod.log\nlog() {{ printf \'%s\\n\' "$1" >> "$LOG"; }}\n{body}')
    path.chmod(0o755)
    return str(path)


def runner(
    workdir: Path, argv: list[str], *, log: bool = True, timeout: float = 60, secrets: tuple = ()
) -> MongodRunner:
    run_dir = workdir / f"run-{len(list(workdir.glob('run-*')))}"
    run_dir.mkdir(mode=0o777)
    run_dir.chmod(0o777)
    return MongodRunner(
        argv,
        RunAs.service_user(service_user_name()),
        RunAs.service_user(service_user_name()).environment({"EXTRA": "1"}),
        str(run_dir),
        str(workdir / "mongod.log") if log else None,
        timeout,
        lambda text: text.replace("Dummy-Proc-6", "********") if secrets else text,
        poll_interval=0.02,
    )


def test_a_run_is_followed_through_its_log_from_where_it_was(workdir: Path) -> None:
    (workdir / "mongod.log").write_text(START % 1 + "\n" + '{"id":23138,"attr":{"exitCode":0}}\n')
    user = pwd.getpwnam(service_user_name())
    os.chown(workdir / "mongod.log", user.pw_uid, user.pw_gid)
    body = "log '" + START % "'$$'" + '\'\nlog \'{"id":29111,"msg":"Rotated"}\'\necho out; echo Dummy-Proc-6 >&2\n'
    result = runner(workdir, [script(workdir, "mongod", body)], secrets=("x",)).run()
    assert result.returncode == 0 and result.timed_out is False and result.forked_pid is None
    assert [e["id"] for e in result.entries] == [4615611, 29111], "the earlier run is not this one"
    assert result.entries[0]["attr"]["pid"] == result.pid
    assert result.stdout == "out\n" and result.stderr == "********\n"
    assert result.as_result()["rc_meaning"] == "clean exit"


def test_a_log_on_stdout_is_read_from_stdout(workdir: Path) -> None:
    body = "printf '%s\\n' '" + START % "'$$'" + "' '{\"id\":29111}'\nexit 233\n"
    result = runner(workdir, [script(workdir, "mongod", body)], log=False).run()
    assert [e["id"] for e in result.entries] == [4615611, 29111] and result.returncode == 233
    assert "1001" in (exit_meaning(233) or "")


def test_fork_follows_the_child_until_it_has_gone(workdir: Path) -> None:
    child = script(workdir, "child", "sleep 0.3\nlog '" + START % "'$$'" + "'\nlog '{\"id\":29111}'\n")
    body = (
        'echo "about to fork child process, waiting until server is ready for connections."\n'
        f"{child} &\n"
        'echo "forked process: $!"\n'
        'echo "child process started successfully, parent exiting"\n'
    )
    result = runner(workdir, [script(workdir, "mongod", body)]).run()
    assert result.returncode == 0 and result.forked_pid is not None and result.mongod_pid == result.forked_pid
    assert [e["id"] for e in result.entries] == [4615611, 29111], "the parent waited for the child's lines"
    assert process_facts(result.forked_pid)[0] is False


def test_a_failed_child_is_reported_by_the_parent(workdir: Path) -> None:
    body = 'echo "forked process: 999999"\necho "ERROR: child process failed, exited with error number 233"\nexit 233\n'
    result = runner(workdir, [script(workdir, "mongod", body)]).run()
    assert (result.returncode, result.child_returncode, result.forked_pid) == (233, 233, 999999)


def test_a_run_that_starts_serving_is_stopped(workdir: Path) -> None:
    body = (
        "log '" + START % "'$$'" + "'\n"
        'trap \'log "{\\"id\\":23138,\\"attr\\":{\\"exitCode\\":0}}"; exit 0\' TERM\n'
        'log \'{"id":23016,"msg":"Waiting for connections"}\'\n'
        "while :; do sleep 0.05; done\n"
    )
    result = runner(workdir, [script(workdir, "mongod", body)]).run()
    assert result.stopped_listening is True and result.returncode == 0
    assert [e["id"] for e in result.entries] == [4615611, 23016, 23138]


def test_at_the_deadline_the_process_is_left_running(workdir: Path) -> None:
    result = runner(workdir, [script(workdir, "mongod", "exec sleep 60\n")], timeout=0.3).run()
    try:
        assert result.timed_out is True and result.returncode is None
        assert process_facts(result.pid)[0] is True, "never killed: it may be between two renames"
    finally:
        os.kill(result.pid, signal.SIGKILL)


def test_a_killed_run_and_a_binary_that_cannot_start(workdir: Path) -> None:
    result = runner(workdir, [script(workdir, "mongod", "kill -9 $$\n")]).run()
    assert result.returncode == -9 and exit_meaning(-9) == "killed by signal 9 (SIGKILL)"
    with pytest.raises(ServiceUserError, match="cannot start"):
        runner(workdir, [str(workdir / "absent")]).run()


def test_mongod_gets_the_service_users_identity_and_a_minimal_environment(workdir: Path) -> None:
    out = workdir / "out"
    body = f"id -u > {out}.uid\nid -G > {out}.groups\nenv > {out}.env\npwd > {out}.cwd\ntouch {out}.created\n"
    result = runner(workdir, [script(workdir, "mongod", body)]).run()
    assert result.returncode == 0
    user = pwd.getpwnam(service_user_name())
    assert int((workdir / "out.uid").read_text()) == user.pw_uid
    assert set((workdir / "out.groups").read_text().split()) == {
        str(g) for g in os.getgrouplist(user.pw_name, user.pw_gid)
    }
    assert (workdir / "out.created").stat().st_uid == user.pw_uid, "files belong to the service user, never root"
    assert (workdir / "out.created").stat().st_mode & 0o777 == 0o600, "umask 0077, as mongod's own"
    assert (workdir / "out.cwd").read_text().strip() == "/"
    names = {line.split("=", 1)[0] for line in (workdir / "out.env").read_text().splitlines() if "=" in line}
    assert {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "EXTRA"} <= names
    assert not {n for n in names if n.startswith(("ANSIBLE", "PYTEST", "PYTHON"))}, names


def test_service_user_checks() -> None:
    with pytest.raises(ServiceUserError, match="does not exist"):
        RunAs.service_user("no-such-user-kmipops")
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert RunAs.service_user(me).drop is False, "already that user: nothing to drop"
    if os.geteuid() == 0:
        nobody = RunAs.service_user("nobody")
        assert nobody.drop is True and nobody.uid == pwd.getpwnam("nobody").pw_uid
