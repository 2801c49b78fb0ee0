# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Whether a member's keystore is in a state mongod can start from, and what to do when not.

PSMDB's rotation (psmdb-kmip.md section 4): clone ``key.db`` into ``key.db.rotation`` under the
new key, register a generated key, rename ``key.db`` -> ``key.db.rotated`` and ``key.db.rotation``
-> ``key.db``, then write the new id into storage.bson and log 29111. A process that dies on the
way leaves one of these states:

- ``leftover_rotation_dir``: ``key.db`` intact, a (partial or complete) ``key.db.rotation``. The
  member starts on its old key; the next rotation is refused until the directory is removed,
  which is safe: it holds nothing the old key cannot rebuild.
- ``swap_interrupted``: no ``key.db`` (killed between the renames): ``key.db.rotated`` is the old
  keystore that storage.bson still names. A normal start would create a new empty keystore.
- ``metadata_not_written``: the renames are done, so ``key.db`` is under the NEW key, but
  storage.bson still names the old one: the next start fails (29120). On disk this looks like a
  completed rotation; it is told apart by the run that did it (the module's own run, exactly), or
  by mongod's log (a rotation run that logged its new key and ended without 29111 or an error).

Recovery is always the operator's decision: the modules describe it and never act on it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import (
    KEY_DB,
    KEY_DB_ROTATED,
    KEY_DB_ROTATION,
    MemberFiles,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import LogScan, MongodRun

OK = "ok"
NO_DATA = "no_data"
NOT_KMIP = "not_kmip"
RUNNING = "running"
ROTATION_RUNNING = "rotation_running"
LEFTOVER_ROTATION_DIR = "leftover_rotation_dir"
SWAP_INTERRUPTED = "swap_interrupted"
METADATA_NOT_WRITTEN = "metadata_not_written"
#: states a rotation must refuse to touch: only the documented recovery helps
INTERRUPTED = (SWAP_INTERRUPTED, METADATA_NOT_WRITTEN)


@dataclasses.dataclass
class Assessment:
    state: str
    message: str = ""
    recovery: list[str] = dataclasses.field(default_factory=list)
    #: the key the interrupted rotation was rotating to (registered on the KMS if generated)
    interrupted_new_key: str | None = None

    def as_result(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "message": self.message,
            "recovery": list(self.recovery),
            "interrupted_new_key_identifier": self.interrupted_new_key,
        }


def leftover_message(files: MemberFiles) -> str:
    return (
        f"{files.key_db_rotation.path} was left by a master key rotation that did not finish (PSMDB removes it "
        "on any failure it survives, so a process was killed or crashed). It is a partial or complete copy of "
        "the keystore under a key that storage.bson does not name; the member still starts on its current key, "
        f"but PSMDB refuses every rotation while it exists ('Rotation key database directory already exists'). "
        "It holds nothing the current key cannot rebuild: removing it is safe once no mongod runs on this "
        "dbPath (no rotation in progress). Remove it (remove_leftover_rotation_dir=true) and rotate again"
    )


def _new_key_text(new_key: str | None) -> str:
    return f"the new key {new_key}" if new_key else "the new key (its id is in log 29116 or 29115 of that run)"


def swap_interrupted(files: MemberFiles, new_key: str | None) -> Assessment:
    db = files.db_path
    old = files.key_id
    return Assessment(
        SWAP_INTERRUPTED,
        f"a master key rotation stopped between its two renames: {db}/{KEY_DB} is missing, {db}/{KEY_DB_ROTATED} "
        f"is the keystore under the old key {old} that storage.bson still names"
        + (
            f", and {db}/{KEY_DB_ROTATION} is the copy under {_new_key_text(new_key)}"
            if files.key_db_rotation.present
            else ""
        )
        + ". Do not start mongod as it is: it would create an empty keystore that cannot open the data",
        [
            f"make sure no mongod runs on {db}",
            f"rename {db}/{KEY_DB_ROTATED} to {db}/{KEY_DB} (the keystore under {old}, the key storage.bson names)",
            f"move {db}/{KEY_DB_ROTATION} out of the dbPath (keep it until the member runs again)"
            if files.key_db_rotation.present
            else "nothing else to move",
            f"start mongod normally: it opens the keystore with {old}",
            "rotate again; a key the interrupted run registered is used by no data and can be deactivated "
            "on the KMS once no backup needs it",
        ],
        new_key,
    )


def metadata_not_written(files: MemberFiles, new_key: str | None, evidence: str) -> Assessment:
    db = files.db_path
    old = files.key_id
    return Assessment(
        METADATA_NOT_WRITTEN,
        f"a master key rotation stopped after swapping the keystores and before writing storage.bson ({evidence}): "
        f"{db}/{KEY_DB} is encrypted with {_new_key_text(new_key)} while storage.bson still names {old}, so "
        "mongod's next normal start fails (29120)",
        [
            f"make sure no mongod runs on {db}",
            f"move {db}/{KEY_DB} (under {_new_key_text(new_key)}) out of the dbPath, keeping it",
            f"rename {db}/{KEY_DB_ROTATED} to {db}/{KEY_DB} (the keystore under {old}, the key storage.bson names)",
            f"start mongod normally: it opens the keystore with {old}; then rotate again",
            "alternative, to keep the new key: set storage.options.encryption.kmip.keyId in storage.bson to the "
            "new key id with a BSON-aware tool, then start mongod normally - rehearse it first, never guess",
        ],
        new_key,
    )


def interrupted_rotation_run(scan: LogScan | None, files: MemberFiles) -> MongodRun | None:
    """The newest rotation run of the log when it logged a new key and ended without 29111,
    without an error and without a shutdown line (a process that died mid-rotation), and no
    later start opened a keystore (later starts that failed, e.g. with 29120, are passed over)."""
    for run in scan.runs if scan is not None else []:
        if run.rotation:
            interrupted = (
                run.rotated_to is None
                and run.encryption_error is None
                and run.fatal_error is None
                and run.exit_code is None
            )
            new_key = run.new_key_of_rotation
            return run if interrupted and new_key is not None and new_key != files.key_id else None
        if run.key_db_ready and run.encryption_error is None:
            return None  # a later start opened its keystore: whatever happened before is over
    return None


def assess(files: MemberFiles, scan: LogScan | None = None, running_rotation: bool = False) -> Assessment:
    """The state of a member's keystore from its dbPath and, when read, its log."""
    if files.lock.held:
        if running_rotation:
            return Assessment(
                ROTATION_RUNNING,
                "a mongod runs a master key rotation on this dbPath now; wait until it exits",
            )
        return Assessment(RUNNING, "mongod runs on this dbPath (mongod.lock is held)")
    if not files.exists or (not files.storage.storage_bson and not files.key_db.present):
        return Assessment(NO_DATA, f"{files.db_path} holds no mongod data")
    if files.key_id is None:
        return Assessment(NOT_KMIP, "storage.bson names no KMIP master key: the data is not encrypted with KMIP")
    run = interrupted_rotation_run(scan, files)
    new_key = run.new_key_of_rotation if run is not None else None
    if not files.key_db.present and files.key_db_rotated.present:
        return swap_interrupted(files, new_key)
    if run is not None and files.key_db.present and files.key_db_rotated.present and not files.key_db_rotation.present:
        return metadata_not_written(
            files,
            new_key,
            f"mongod's log: the rotation run of pid {run.pid} started {run.started_at} logged the new key "
            f"{new_key} and ended without 29111 'Rotated master encryption key', without an error and without "
            "a shutdown line",
        )
    if files.key_db_rotation.present:
        assessment = Assessment(LEFTOVER_ROTATION_DIR, leftover_message(files))
        assessment.interrupted_new_key = new_key
        if run is not None and run.key_ids_created:
            assessment.message += (
                f". The interrupted run registered the key {run.key_ids_created[-1]} on the KMS; no data uses it"
            )
        return assessment
    return Assessment(OK)


def after_own_run(before: MemberFiles, after: MemberFiles, run: MongodRun | None) -> Assessment:
    """The state after the module's own rotation run, decided exactly from the inodes it saw before."""
    new_key = run.new_key_of_rotation if run is not None else None
    if not after.key_db.present and after.key_db_rotated.present:
        return swap_interrupted(after, new_key)
    swapped = (
        after.key_db.present
        and after.key_db.inode != before.key_db.inode
        and after.key_db_rotated.inode == before.key_db.inode
    )
    if swapped and after.key_id == before.key_id:
        return metadata_not_written(
            after, new_key, f"{KEY_DB} was replaced by the clone during this run and storage.bson was not rewritten"
        )
    if after.key_db_rotation.present:
        assessment = Assessment(LEFTOVER_ROTATION_DIR, leftover_message(after))
        if run is not None and run.key_ids_created:
            assessment.interrupted_new_key = run.key_ids_created[-1]
            assessment.message += (
                f". This run registered the key {run.key_ids_created[-1]} on the KMS before it stopped; no data uses it"
            )
        return assessment
    if swapped:
        return Assessment(OK, "rotated")
    if after.key_db.inode == before.key_db.inode and after.key_id == before.key_id:
        return Assessment(
            OK, "unchanged: the keystore and storage.bson are as before the run; mongod starts on its old key"
        )
    return Assessment(OK)
