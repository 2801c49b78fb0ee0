# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""A member's dbPath set aside for a rolling initial sync, put back, or purged.

PSMDB encrypts only data it writes from an empty dbPath: a member is converted to KMIP by
starting it empty with KMIP settings so that initial sync rewrites every document. Its old data
is kept as it was, by a ``rename(2)`` inside the dbPath's parent directory (same filesystem: no
copy, no extra space, owner, mode and SELinux label kept), never deleted until the operator asks
(``purge``), and only once the member's new dbPath holds KMIP-encrypted data.

Every step is recorded in a small JSON **manifest** beside the set-aside copy
(``<dbPath>.pre-kmip-<UTC>.kmipops-conversion.json``): where the copy is, the old dbPath's
owner/mode/label, the mongod.conf saved next to it (``<copy>.mongod.conf``), the inode of the
empty dbPath this code created, and the state (``setting_aside`` -> ``set_aside`` ->
``restored`` | ``purged``). A restore removes only the dbPath this code created (same inode): it
holds what initial sync copied, nothing else.

Each operation is a plan (what would be done, for check mode) and its application; a typed error
before the first change leaves the host untouched.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.errors import (
    ConversionError,
    NoSetAsideCopyError,
    NotSameFilesystemError,
    UnexpectedDbPathError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import inspect_db_path

SET_ASIDE_INFIX = ".pre-kmip-"
MANIFEST_SUFFIX = ".kmipops-conversion.json"
CONFIG_SUFFIX = ".mongod.conf"
MANIFEST_VERSION = 1

#: states of a manifest
SETTING_ASIDE = "setting_aside"
SET_ASIDE = "set_aside"
RESTORED = "restored"
PURGED = "purged"
#: states in which the copy is still there and still the member's last good data
ACTIVE_STATES = (SETTING_ASIDE, SET_ASIDE)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def stamp(now: datetime.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


@dataclasses.dataclass
class SelinuxHooks:
    """The SELinux label of a path, read and applied through AnsibleModule (None: SELinux off)."""

    get: Callable[[str], Any] | None = None
    set: Callable[[str, Any], None] | None = None


@dataclasses.dataclass
class Manifest:
    path: str
    db_path: str
    set_aside_path: str
    created: str
    state: str
    uid: int
    gid: int
    mode: int
    selinux_context: list[str] | None = None
    data_encryption: str | None = None
    data_bytes: int | None = None
    config_path: str | None = None
    config_backup: str | None = None
    config_sha256: str | None = None
    old_inode: int | None = None
    new_inode: int | None = None
    history: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> Manifest:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(path=path, **{k: v for k, v in data.items() if k in fields and k != "path"})

    def save(self) -> None:
        data = dataclasses.asdict(self)
        data.pop("path")
        data["version"] = MANIFEST_VERSION
        _atomic_write(self.path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o600)

    def mark(self, state: str) -> None:
        self.state = state
        self.history.append({"state": state, "at": utc_now().isoformat()})
        self.save()

    @property
    def copy_present(self) -> bool:
        return os.path.isdir(self.set_aside_path)

    def as_result(self) -> dict[str, Any]:
        return {
            "manifest": self.path,
            "set_aside_path": self.set_aside_path,
            "created": self.created,
            "state": self.state,
            "present": self.copy_present,
            "data_encryption": self.data_encryption,
            "data_bytes": self.data_bytes,
            "config_backup": self.config_backup,
        }


def real_db_path(db_path: str) -> str:
    """The directory a rename acts on (a symlinked dbPath is resolved)."""
    return os.path.realpath(db_path)


def manifests_for(db_path: str) -> list[Manifest]:
    """Every manifest recorded for this dbPath, oldest first."""
    real = real_db_path(db_path)
    parent, base = os.path.split(real)
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    found = []
    for name in names:
        if name.startswith(base + SET_ASIDE_INFIX) and name.endswith(MANIFEST_SUFFIX):
            try:
                manifest = Manifest.load(os.path.join(parent, name))
            except (OSError, ValueError, TypeError):
                continue
            if manifest.db_path == real:
                found.append(manifest)
    return found


def active_manifest(db_path: str) -> Manifest | None:
    """The newest set-aside copy that is still the member's last good data."""
    active = [m for m in manifests_for(db_path) if m.state in ACTIVE_STATES and m.copy_present]
    return active[-1] if active else None


def dir_is_empty(path: str) -> bool:
    return not os.listdir(path)


def disk_usage_bytes(path: str) -> int:
    """Bytes the files under ``path`` occupy (allocated blocks; symlinks not followed)."""
    total = 0
    for root, dirs, files in os.walk(path, onerror=None, followlinks=False):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_blocks * 512
    return total


def data_encryption_of(db_path: str) -> str:
    """``kmip``, ``vault``, ``keyfile``, ``unencrypted`` or ``none`` (empty / missing).

    Key-file data has no encryption options in storage.bson (PSMDB writes none for a key file):
    only its keystore ``key.db`` tells it from plain data.
    """
    state = inspect_db_path(db_path)
    if state.encryption_kind in ("kmip", "vault"):
        return state.encryption_kind
    if state.encryption_kind == "keyfile" or os.path.isdir(os.path.join(db_path, "key.db")):
        return "keyfile"
    if state.holds_unencrypted_data:
        return "unencrypted"
    return "none"


def refuse_unsafe_rename(real: str) -> None:
    if os.path.ismount(real):
        raise NotSameFilesystemError(
            f"{real} is a mount point: it cannot be renamed aside on its own filesystem. Mount the data one level "
            "lower (dbPath a directory inside the mount) or set the data aside by hand",
            db_path=real,
        )
    parent = os.path.dirname(real)
    if os.stat(parent).st_dev != os.stat(real).st_dev:
        raise NotSameFilesystemError(f"{real} and its parent are on different filesystems", db_path=real)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes, mode: int, uid: int | None = None, gid: int | None = None) -> None:
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".kmipops-conversion.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if uid is not None and gid is not None:
                os.fchown(handle.fileno(), uid, gid)
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    _fsync_dir(directory)


def _copy_file(source: str, dest: str) -> None:
    """A byte copy with the source's owner and mode, written atomically."""
    st = os.stat(source)
    with open(source, "rb") as handle:
        data = handle.read()
    _atomic_write(dest, data, st.st_mode & 0o7777, st.st_uid, st.st_gid)


# -- set aside --------------------------------------------------------------------------------


@dataclasses.dataclass
class SetAsidePlan:
    db_path: str
    action: str  # set_aside | already_set_aside | nothing_to_set_aside
    set_aside_path: str | None = None
    manifest: str | None = None
    config_backup: str | None = None
    data_encryption: str | None = None
    data_bytes: int | None = None

    @property
    def changes(self) -> bool:
        return self.action == "set_aside"

    def as_result(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_set_aside(db_path: str, config_path: str | None, now: datetime.datetime | None = None) -> SetAsidePlan:
    real = real_db_path(db_path)
    current = active_manifest(real)
    if current is not None and os.path.isdir(real):
        return SetAsidePlan(
            real,
            "already_set_aside",
            current.set_aside_path,
            current.path,
            current.config_backup,
            current.data_encryption,
            current.data_bytes,
        )
    if not os.path.isdir(real):
        raise UnexpectedDbPathError(f"the dbPath {real} does not exist: there is nothing to set aside", db_path=real)
    if dir_is_empty(real):
        return SetAsidePlan(real, "nothing_to_set_aside")
    refuse_unsafe_rename(real)
    if config_path is not None and not os.path.isfile(config_path):
        raise UnexpectedDbPathError(f"the mongod configuration {config_path} does not exist", config=config_path)
    target = real + SET_ASIDE_INFIX + stamp(now or utc_now())
    if os.path.lexists(target):
        raise UnexpectedDbPathError(f"{target} already exists", set_aside_path=target)
    return SetAsidePlan(
        real,
        "set_aside",
        target,
        target + MANIFEST_SUFFIX,
        target + CONFIG_SUFFIX if config_path else None,
        data_encryption_of(real),
        disk_usage_bytes(real),
    )


def apply_set_aside(plan: SetAsidePlan, config_path: str | None, selinux: SelinuxHooks) -> Manifest:
    """Manifest first (a crash leaves a record), config copy, rename, then the empty dbPath."""
    if not plan.set_aside_path or not plan.manifest:
        raise UnexpectedDbPathError(f"{plan.db_path}: nothing to set aside ({plan.action})", db_path=plan.db_path)
    real = plan.db_path
    st = os.stat(real)
    context = selinux.get(real) if selinux.get else None
    manifest = Manifest(
        path=plan.manifest,
        db_path=real,
        set_aside_path=plan.set_aside_path,
        created=utc_now().isoformat(),
        state=SETTING_ASIDE,
        uid=st.st_uid,
        gid=st.st_gid,
        mode=st.st_mode & 0o7777,
        selinux_context=list(context) if context else None,
        data_encryption=plan.data_encryption,
        data_bytes=plan.data_bytes,
        config_path=config_path,
        config_backup=plan.config_backup,
        old_inode=st.st_ino,
    )
    manifest.mark(SETTING_ASIDE)
    if config_path is not None and plan.config_backup is not None:
        _copy_file(config_path, plan.config_backup)
        manifest.config_sha256 = _file_sha256(plan.config_backup)
    try:
        os.rename(real, plan.set_aside_path)
    except OSError as exc:
        # nothing moved: take back the record and the config copy, so the member is as it was
        for leftover in (plan.config_backup, plan.manifest):
            if leftover and os.path.isfile(leftover):
                os.unlink(leftover)
        if exc.errno == errno.EXDEV:
            raise NotSameFilesystemError(
                f"rename({real}, {plan.set_aside_path}) failed with EXDEV: the kernel cannot rename this directory "
                "in place (on overlayfs, a directory that comes from a lower layer, for example one created in a "
                "container image; or a bind mount). Nothing was changed. Use a dbPath that is a plain directory "
                "of its parent's filesystem",
                db_path=real,
            ) from None
        raise ConversionError(
            f"cannot rename {real} aside: {exc.strerror}; nothing was changed", db_path=real
        ) from None
    os.mkdir(real, 0o700)
    os.chown(real, st.st_uid, st.st_gid)
    os.chmod(real, st.st_mode & 0o7777)
    if context and selinux.set:
        selinux.set(real, context)
    _fsync_dir(os.path.dirname(real))
    manifest.new_inode = os.stat(real).st_ino
    manifest.mark(SET_ASIDE)
    return manifest


# -- restore ------------------------------------------------------------------------------------


@dataclasses.dataclass
class RestorePlan:
    db_path: str
    action: str  # restore | already_restored
    set_aside_path: str | None = None
    manifest: str | None = None
    remove_new_db_path: bool = False
    restore_config: bool = False
    config_path: str | None = None

    @property
    def changes(self) -> bool:
        return self.action == "restore"

    def as_result(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_restore(db_path: str) -> RestorePlan:
    real = real_db_path(db_path)
    current = active_manifest(real)
    if current is None:
        done = [m for m in manifests_for(real) if m.state == RESTORED]
        if done and os.path.isdir(real) and os.stat(real).st_ino == done[-1].old_inode:
            return RestorePlan(real, "already_restored", done[-1].set_aside_path, done[-1].path)
        raise NoSetAsideCopyError(
            f"no set-aside copy of {real} is recorded (no manifest {os.path.basename(real)}{SET_ASIDE_INFIX}*"
            f"{MANIFEST_SUFFIX} in state set_aside with its copy present): nothing to restore",
            db_path=real,
        )
    remove_new = False
    if os.path.lexists(real):
        st = os.lstat(real)
        created_here = current.new_inode is not None and st.st_ino == current.new_inode
        if not created_here and not (os.path.isdir(real) and dir_is_empty(real)):
            raise UnexpectedDbPathError(
                f"{real} is not the empty dbPath the set-aside step created (inode {st.st_ino}, recorded "
                f"{current.new_inode}) and is not empty: restore refuses to remove it. Move it away by hand, then "
                "restore again",
                db_path=real,
                set_aside_path=current.set_aside_path,
            )
        remove_new = True
    restore_config = False
    if current.config_path and current.config_backup:
        if not os.path.isfile(current.config_backup):
            raise UnexpectedDbPathError(
                f"the saved mongod.conf {current.config_backup} is missing", config_backup=current.config_backup
            )
        restore_config = not os.path.isfile(current.config_path) or _file_sha256(current.config_path) != _file_sha256(
            current.config_backup
        )
    return RestorePlan(
        real, "restore", current.set_aside_path, current.path, remove_new, restore_config, current.config_path
    )


def apply_restore(plan: RestorePlan) -> Manifest:
    if not plan.manifest or not plan.set_aside_path:
        raise UnexpectedDbPathError(f"{plan.db_path}: the plan ({plan.action}) restores nothing", db_path=plan.db_path)
    manifest = Manifest.load(plan.manifest)
    real = plan.db_path
    if plan.remove_new_db_path:
        # what initial sync copied into the new dbPath: a partial (or refused) copy of the set's data
        shutil.rmtree(real)
    os.rename(plan.set_aside_path, real)
    _fsync_dir(os.path.dirname(real))
    if plan.restore_config and manifest.config_path and manifest.config_backup:
        _copy_file(manifest.config_backup, manifest.config_path)
    manifest.mark(RESTORED)
    return manifest


# -- purge --------------------------------------------------------------------------------------


@dataclasses.dataclass
class PurgePlan:
    db_path: str
    remove: list[dict[str, Any]]

    @property
    def changes(self) -> bool:
        return bool(self.remove)

    def as_result(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_purge(db_path: str) -> PurgePlan:
    """Every set-aside copy of this dbPath, once the dbPath itself holds KMIP-encrypted data."""
    real = real_db_path(db_path)
    copies = [m for m in manifests_for(real) if m.state in ACTIVE_STATES]
    if not copies:
        return PurgePlan(real, [])
    current = data_encryption_of(real) if os.path.isdir(real) else "none"
    if current != "kmip":
        raise UnexpectedDbPathError(
            f"{real} holds {current} data, not KMIP-encrypted data: its set-aside copy may be the member's only good "
            "copy, so it is kept. Finish (or roll back) the conversion first",
            db_path=real,
            data_encryption=current,
        )
    return PurgePlan(real, [m.as_result() for m in copies])


def apply_purge(plan: PurgePlan) -> list[Manifest]:
    done = []
    for entry in plan.remove:
        manifest = Manifest.load(entry["manifest"])
        if os.path.isdir(manifest.set_aside_path):
            shutil.rmtree(manifest.set_aside_path)
        if manifest.config_backup and os.path.isfile(manifest.config_backup):
            os.unlink(manifest.config_backup)
        manifest.mark(PURGED)  # the manifest stays: the record of what was removed
        done.append(manifest)
    return done
