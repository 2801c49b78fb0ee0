# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Run one mongod as the service user, wait for it with a deadline, and collect what it logged.

- Privileges: the child gets the service user's uid, primary gid and supplementary groups
  before ``exec`` (``subprocess.Popen(user=, group=, extra_groups=)``), so every file mongod
  creates in the dbPath or the log directory belongs to that user, as under its systemd unit.
  The environment is systemd's minimal one plus the unit's EnvironmentFile variables; the
  working directory is ``/`` and the umask 0077, as mongod sets for itself.
- ``processManagement.fork``: the parent prints ``forked process: <pid>`` and exits with the
  child's status once the child is ready or has exited; the child is then followed by its pid
  until it has gone.
- A mongod of this run that starts listening (23016) did not rotate: it is stopped with SIGTERM,
  and the run reported as failed.
- At the deadline the process is left running, never killed: a SIGKILL between the keystore
  renames is the one thing that leaves a member unable to start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.waiter import Waiter, WaitTimeoutError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.errors import ServiceUserError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import process_facts
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import (
    LISTENING,
    STARTING,
    LogFollower,
    parse_line,
)

#: systemd's default PATH for services
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_FORKED = re.compile(r"^forked process: (\d+)\s*$", re.MULTILINE)
_CHILD_FAILED = re.compile(r"child process failed, exited with error number (\d+)")
OUTPUT_TAIL = 4000

#: what mongod's exit codes mean (``util/exit_code.h``; 233 is 1001 & 0xFF as a shell sees it)
EXIT_CODES = {
    0: "clean exit",
    2: "mongod refused its options",
    14: "abrupt exit (a storage engine failure)",
    48: "the port is in use by another process",
    62: "the data files are from another mongod version",
    100: "the dbPath is missing or locked by another mongod",
    233: "data-at-rest encryption error (exit code 1001)",
    1001: "data-at-rest encryption error",
}


def exit_meaning(code: int | None) -> str | None:
    if code is None:
        return None
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name if -code in signal.valid_signals() else '?'})"
    return EXIT_CODES.get(code, f"exit code {code}")


@dataclasses.dataclass(frozen=True)
class RunAs:
    """Who mongod runs as. ``drop`` is False when the module already runs as that user."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str
    drop: bool

    @classmethod
    def service_user(cls, name: str, option: str = "service_user") -> RunAs:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ServiceUserError(f"{option}: user {name!r} does not exist on this host", option=option) from None
        euid = os.geteuid()
        if euid != 0 and euid != entry.pw_uid:
            raise ServiceUserError(
                f"{option}: the module runs as uid {euid}; it needs root (become: true) to start mongod as {name!r}, "
                f"or must run as {name!r} itself",
                option=option,
            )
        return cls(
            name=name,
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            groups=tuple(sorted(set(os.getgrouplist(name, entry.pw_gid)))),
            home=entry.pw_dir,
            shell=entry.pw_shell,
            drop=euid == 0 and entry.pw_uid != 0,
        )

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {"PATH": SERVICE_PATH, "HOME": self.home, "USER": self.name, "LOGNAME": self.name, "SHELL": self.shell}
        env.update(extra)
        return env


@dataclasses.dataclass
class RunResult:
    argv: list[str]
    pid: int
    #: the exit status of the process started (the fork parent with fork: true)
    returncode: int | None = None
    #: the forked child's pid (fork: true), and its status as the parent reported it
    forked_pid: int | None = None
    child_returncode: int | None = None
    timed_out: bool = False
    #: the run started listening instead of rotating, and was sent SIGTERM
    stopped_listening: bool = False
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    entries: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def mongod_pid(self) -> int:
        return self.forked_pid or self.pid

    @property
    def exit_code(self) -> int | None:
        """The status that judges the run: the parent's, which is the child's when it failed."""
        return self.returncode

    def as_result(self) -> dict[str, Any]:
        return {
            "pid": self.mongod_pid,
            "forked": self.forked_pid is not None,
            "rc": self.returncode,
            "rc_meaning": exit_meaning(self.returncode),
            "timed_out": self.timed_out,
            "stopped_listening": self.stopped_listening,
            "duration_seconds": round(self.duration, 3),
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


class MongodRunner:
    """Starts mongod once and follows it to its end (or the deadline)."""

    def __init__(
        self,
        argv: list[str],
        run_as: RunAs,
        env: dict[str, str],
        workdir: str,
        log_path: str | None,
        timeout: float,
        redact: Callable[[str], str],
        poll_interval: float = 0.2,
    ) -> None:
        self.argv = argv
        self.run_as = run_as
        self.env = env
        self.workdir = workdir
        self.log_path = log_path
        self.timeout = timeout
        self.redact = redact
        self.poll_interval = poll_interval

    def run(self) -> RunResult:
        stdout_path = os.path.join(self.workdir, "stdout")
        stderr_path = os.path.join(self.workdir, "stderr")
        follower = LogFollower(self.log_path) if self.log_path else None
        kwargs: dict[str, Any] = {}
        if self.run_as.drop:
            kwargs.update(user=self.run_as.uid, group=self.run_as.gid, extra_groups=list(self.run_as.groups))
        started = time.monotonic()
        deadline = started + self.timeout
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            try:
                process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd="/",
                    env=self.env,
                    umask=0o077,
                    start_new_session=True,
                    close_fds=True,
                    **kwargs,
                )
            except OSError as exc:
                raise ServiceUserError(
                    f"cannot start {self.argv[0]} as {self.run_as.name}: {exc.strerror or exc}", binary=self.argv[0]
                ) from None
        result = RunResult(argv=self.argv, pid=process.pid)
        entries: list[dict[str, Any]] = []
        ours: set[int] = {process.pid}

        def finished() -> bool:
            """One look at the run: what it wrote, whether it serves, whether it (and its fork) ended."""
            nonlocal entries
            stdout = _read(stdout_path)
            forked = _FORKED.search(stdout)
            if forked:
                result.forked_pid = int(forked.group(1))
                ours.add(result.forked_pid)
            entries.extend(follower.poll() if follower else [])
            if not follower:
                entries = [e for e in (parse_line(line) for line in stdout.splitlines()) if e is not None]
            if not result.stopped_listening and _listening(entries, ours):
                # it did not rotate: it serves. Stop the process this run started.
                result.stopped_listening = True
                _signal(result.mongod_pid, signal.SIGTERM)
            if result.returncode is None:
                result.returncode = process.poll()
            return result.returncode is not None and (
                result.forked_pid is None or not process_facts(result.forked_pid)[0]
            )

        remaining = max(deadline - time.monotonic(), 1e-3)  # the deadline counts from the start
        try:
            Waiter(remaining, self.poll_interval).until(
                finished, bool, lambda done: "still running", f"{self.argv[0]} to exit"
            )
        except WaitTimeoutError:
            result.timed_out = True
        if follower:
            entries.extend(follower.poll())
        result.duration = time.monotonic() - started
        stdout = _read(stdout_path)
        child = _CHILD_FAILED.search(stdout)
        if child:
            result.child_returncode = int(child.group(1))
        result.stdout = self.redact(_tail(stdout))
        result.stderr = self.redact(_tail(_read(stderr_path)))
        result.entries = own_entries(entries, ours)
        return result


def own_entries(entries: list[dict[str, Any]], pids: set[int]) -> list[dict[str, Any]]:
    """The entries from the start line of one of ``pids`` on (another process writing the same
    log, e.g. an earlier run, is left out); all of them when no start line was logged."""
    start = next((i for i, e in enumerate(entries) if e.get("id") == STARTING and _pid(e) in pids), None)
    if start is None:
        return entries
    own: list[dict[str, Any]] = []
    for entry in entries[start:]:
        if entry.get("id") == STARTING and _pid(entry) not in pids:
            break
        own.append(entry)
    return own


def _pid(entry: dict[str, Any]) -> int | None:
    attr = entry.get("attr")
    pid = attr.get("pid") if isinstance(attr, dict) else None
    return pid if isinstance(pid, int) else None


def _listening(entries: list[dict[str, Any]], pids: set[int]) -> bool:
    return any(e.get("id") == LISTENING for e in own_entries(entries, pids)) and any(
        e.get("id") == STARTING and _pid(e) in pids for e in entries
    )


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]
