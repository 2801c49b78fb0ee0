# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End a process group for good: return only when none of its processes can run any more.

Killing a group and then waiting for its leader is not enough. The other members got the
signal at the same time, but each one dies when the kernel gets round to it, and a dying
process frees its memory before it closes its files (listening sockets included). Once the
leader is gone they belong to init, so nobody here can ``wait()`` for them. The helpers below
read /proc instead: a member counts until every thread of it is a zombie (a zombie holds no
memory, file or socket; init reaps it).

The leader must not have been reaped yet when the group is signalled: an unreaped leader keeps
its PID, and so the group id, from being reused by an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["ProcessGroupSurvivedError", "kill_group", "live_members", "terminate_group"]

_PROC = Path("/proc")
_DEAD_STATES = frozenset("ZXx")  # zombie, dead (x: older kernels)


class ProcessGroupSurvivedError(RuntimeError):
    """Members of the group were still running at the deadline."""

    def __init__(self, pgid: int, members: list[int], timeout: float) -> None:
        self.pgid = pgid
        self.members = members
        super().__init__(f"process group {pgid}: {members} still running {timeout:.0f} s after SIGKILL")


def _state_and_group(stat: str) -> tuple[str, int]:
    # "pid (comm) state ppid pgrp ..." where comm may hold spaces and parentheses
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def _has_live_thread(pid: str) -> bool:
    """A thread-group leader can be a zombie while its other threads still run: look at each."""
    try:
        threads = os.listdir(_PROC / pid / "task")
    except OSError:  # gone meanwhile
        return False
    for tid in threads:
        try:
            state, _group = _state_and_group((_PROC / pid / "task" / tid / "stat").read_text())
        except (OSError, IndexError, ValueError):
            continue
        if state not in _DEAD_STATES:
            return True
    return False


def live_members(pgid: int) -> list[int]:
    """PIDs of the processes of group ``pgid`` that still have a thread that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:  # no member at all, not even a zombie
        return []
    except PermissionError:  # exists; look at /proc
        pass
    members = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            _state, group = _state_and_group((_PROC / entry.name / "stat").read_text())
        except (OSError, IndexError, ValueError):
            continue
        if group == pgid and _has_live_thread(entry.name):
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, *, timeout: float = 60.0, interval: float = 0.01) -> None:
    """SIGKILL group ``pgid`` until none of its members can run; raise if some still can at ``timeout``.

    The signal is sent again on every round, for a member forked while the group was dying.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        alive = live_members(pgid)
        if not alive:
            return
        if time.monotonic() >= deadline:
            raise ProcessGroupSurvivedError(pgid, alive, timeout)
        time.sleep(interval)


def terminate_group(pgid: int, *, grace: float, timeout: float = 60.0, interval: float = 0.01) -> None:
    """SIGTERM group ``pgid``, give it ``grace`` seconds to end, then ``kill_group``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live_members(pgid) and time.monotonic() < deadline:
        time.sleep(interval)
    kill_group(pgid, timeout=timeout, interval=interval)
