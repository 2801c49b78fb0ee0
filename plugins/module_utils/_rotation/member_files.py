# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""What a member's dbPath holds for encryption, and whether a mongod holds it.

- ``storage.bson``: the master key id (``_mongod.storage_metadata``);
- ``key.db``: the keystore; ``key.db.rotated``: the keystore under the previous master key, kept
  by the last rotation; ``key.db.rotation``: a rotation's clone, which PSMDB removes on any
  failure, so one that is there was left by a process that died (psmdb-kmip.md section 4);
- ``mongod.lock``: mongod holds an exclusive ``flock`` on it while it runs and writes its pid into
  it; an empty file means a clean shutdown. The lock is probed with ``flock`` as mongod takes it
  (``LOCK_EX | LOCK_NB``, released at once), which a file's mere presence cannot tell.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import os
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import (
    DbPathState,
    inspect_db_path,
)

KEY_DB = "key.db"
KEY_DB_ROTATED = "key.db.rotated"
KEY_DB_ROTATION = "key.db.rotation"
LOCK_FILE = "mongod.lock"


@dataclasses.dataclass
class Entry:
    """One file or directory of the dbPath."""

    path: str
    present: bool = False
    inode: int | None = None
    mtime: str | None = None

    @classmethod
    def of(cls, path: str) -> Entry:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return cls(path)
        stamp = datetime.datetime.fromtimestamp(st.st_mtime, tz=datetime.UTC).isoformat()
        return cls(path, True, st.st_ino, stamp)

    def as_result(self) -> dict[str, Any]:
        return {"path": self.path, "present": self.present, "modified": self.mtime}


@dataclasses.dataclass
class LockState:
    path: str
    exists: bool = False
    #: True: a process holds it (mongod runs); None: it could not be probed
    held: bool | None = False
    #: the pid mongod wrote into the file (a held lock's owner, or the last unclean process)
    pid: int | None = None
    #: the process of ``pid`` is alive
    pid_alive: bool = False
    command: str | None = None
    error: str | None = None

    @property
    def unclean_shutdown(self) -> bool:
        """The file still names a process but nobody holds it: mongod did not shut down cleanly."""
        return self.held is False and self.pid is not None

    def as_result(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "exists": self.exists,
            "held": self.held,
            "pid": self.pid,
            "pid_alive": self.pid_alive,
            "unclean_shutdown": self.unclean_shutdown,
            "error": self.error,
        }


def probe_lock(path: str) -> LockState:
    """Whether a process holds mongod's ``flock`` on ``path`` (never creates the file)."""
    state = LockState(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return state
    except OSError as exc:
        state.exists = os.path.lexists(path)
        state.held = None
        state.error = f"cannot open {path}: {exc.strerror}"
        return state
    state.exists = True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                state.held = None
                state.error = f"cannot probe the lock on {path}: {exc.strerror}"
            else:
                state.held = True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            state.held = False
        content = os.pread(fd, 64, 0)
    finally:
        os.close(fd)
    text = content.decode("ascii", "replace").strip()
    if text.isdigit():
        state.pid = int(text)
        state.pid_alive, state.command = process_facts(state.pid)
    return state


def process_facts(pid: int) -> tuple[bool, str | None]:
    """Whether ``pid`` is a live process (a zombie is not), and its command line."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("utf-8", "replace")
    except OSError:
        return False, None
    # the state follows the parenthesised command name, which may itself hold spaces or ")"
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return False, None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        argv = []
    # the command itself, never its arguments: they may hold a password
    return True, " ".join(argv[:2]) if argv else None


def is_mongod_command(command: str | None) -> bool:
    return bool(command) and any(os.path.basename(part).startswith("mongod") for part in (command or "").split())


@dataclasses.dataclass
class PidFile:
    path: str
    pid: int | None = None
    alive: bool = False
    command: str | None = None

    @property
    def names_running_mongod(self) -> bool:
        return self.alive and is_mongod_command(self.command)

    def as_result(self) -> dict[str, Any]:
        return {"path": self.path, "pid": self.pid, "alive": self.alive, "mongod": self.names_running_mongod}


def read_pid_file(path: str) -> PidFile:
    state = PidFile(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read(64).decode("ascii", "replace").strip()
    except OSError:
        return state
    if text.isdigit():
        state.pid = int(text)
        state.alive, state.command = process_facts(state.pid)
    return state


@dataclasses.dataclass
class MemberFiles:
    """The encryption-related content of a dbPath, read without changing anything."""

    db_path: str
    exists: bool
    storage: DbPathState
    key_db: Entry
    key_db_rotated: Entry
    key_db_rotation: Entry
    lock: LockState

    @classmethod
    def inspect(cls, db_path: str) -> MemberFiles:
        storage = inspect_db_path(db_path)
        return cls(
            db_path=db_path,
            exists=storage.exists,
            storage=storage,
            key_db=Entry.of(os.path.join(db_path, KEY_DB)),
            key_db_rotated=Entry.of(os.path.join(db_path, KEY_DB_ROTATED)),
            key_db_rotation=Entry.of(os.path.join(db_path, KEY_DB_ROTATION)),
            lock=probe_lock(os.path.join(db_path, LOCK_FILE)),
        )

    @property
    def key_id(self) -> str | None:
        return self.storage.kmip_key_id

    def storage_result(self) -> dict[str, Any]:
        return {
            "storage_bson": self.storage.storage_bson,
            "encryption": self.storage.encryption_kind
            or ("unencrypted" if self.storage.holds_unencrypted_data else None),
            "key_identifier": self.key_id,
        }
