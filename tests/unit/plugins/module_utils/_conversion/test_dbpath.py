# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_conversion.dbpath: set aside (rename, never copy), restore, purge, each recorded in a manifest."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion import dbpath
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.errors import (
    NoSetAsideCopyError,
    NotSameFilesystemError,
    UnexpectedDbPathError,
)
from unit.utils.db_path import write_storage_bson

NOW = datetime.datetime(2026, 12, 2, 14, 0, 0, tzinfo=datetime.UTC)
NO_SELINUX = dbpath.SelinuxHooks()


def tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(path.rglob("*"))
    }


@pytest.fixture
def member(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "mongodb"
    write_storage_bson(db, None)
    (db / "collection-0.wt").write_bytes(b"plain documents" * 100)
    db.chmod(0o750)
    conf = tmp_path / "mongod.conf"
    conf.write_text(f"storage:\n  dbPath: {db}\nsecurity:\n  enableEncryption: true\n  encryptionKeyFile: /k\n")
    conf.chmod(0o640)
    return db, conf


def set_aside(db: Path, conf: Path) -> dbpath.Manifest:
    plan = dbpath.plan_set_aside(str(db), str(conf), NOW)
    assert plan.action == "set_aside"
    return dbpath.apply_set_aside(plan, str(conf), NO_SELINUX)


def test_set_aside_renames_and_creates_an_empty_db_path_with_the_same_mode(member: tuple[Path, Path]) -> None:
    db, conf = member
    before = tree(db)
    inode = db.stat().st_ino
    plan = dbpath.plan_set_aside(str(db), str(conf), NOW)
    assert plan.set_aside_path == f"{db}.pre-kmip-20261202T140000Z"
    assert plan.data_encryption == "unencrypted" and plan.data_bytes and plan.data_bytes > 0
    assert tree(db) == before  # planning changes nothing
    manifest = dbpath.apply_set_aside(plan, str(conf), NO_SELINUX)
    copy = Path(manifest.set_aside_path)
    assert copy.stat().st_ino == inode and tree(copy) == before  # renamed, not copied
    assert db.is_dir() and not any(db.iterdir())
    assert (db.stat().st_mode & 0o7777) == 0o750 and db.stat().st_uid == copy.stat().st_uid
    assert Path(manifest.config_backup).read_text() == conf.read_text()
    assert (Path(manifest.config_backup).stat().st_mode & 0o777) == 0o640
    recorded = json.loads(Path(manifest.path).read_text())
    assert recorded["state"] == "set_aside" and recorded["new_inode"] == db.stat().st_ino
    assert [h["state"] for h in recorded["history"]] == ["setting_aside", "set_aside"]
    assert (Path(manifest.path).stat().st_mode & 0o777) == 0o600


def test_set_aside_is_idempotent(member: tuple[Path, Path]) -> None:
    db, conf = member
    set_aside(db, conf)
    (db / "new-data.wt").write_bytes(b"synced")  # the member started and synced meanwhile
    plan = dbpath.plan_set_aside(str(db), str(conf), NOW + datetime.timedelta(hours=1))
    assert plan.action == "already_set_aside" and not plan.changes


def test_an_empty_db_path_has_nothing_to_set_aside(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    assert dbpath.plan_set_aside(str(tmp_path / "db"), None).action == "nothing_to_set_aside"


def test_a_missing_db_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnexpectedDbPathError, match="does not exist"):
        dbpath.plan_set_aside(str(tmp_path / "db"), None)


def test_a_mount_point_is_refused(member: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    db, conf = member
    monkeypatch.setattr(dbpath.os.path, "ismount", lambda path: path == str(db))
    with pytest.raises(NotSameFilesystemError, match="mount point"):
        dbpath.plan_set_aside(str(db), str(conf), NOW)


def test_key_file_data_is_told_from_plain_data_by_its_keystore(member: tuple[Path, Path]) -> None:
    db, _conf = member
    assert dbpath.data_encryption_of(str(db)) == "unencrypted"
    (db / "key.db").mkdir()
    assert dbpath.data_encryption_of(str(db)) == "keyfile"
    write_storage_bson(db, {"kmip": {"keyId": "7"}})
    assert dbpath.data_encryption_of(str(db)) == "kmip"


def test_restore_puts_the_copy_and_the_config_back(member: tuple[Path, Path]) -> None:
    db, conf = member
    before, conf_before = tree(db), conf.read_text()
    set_aside(db, conf)
    (db / "partial-sync.wt").write_bytes(b"half")
    conf.write_text("security:\n  enableEncryption: true\n  kmip:\n    serverName: k\n")
    plan = dbpath.plan_restore(str(db))
    assert plan.remove_new_db_path and plan.restore_config
    manifest = dbpath.apply_restore(plan)
    assert manifest.state == "restored"
    assert tree(db) == before and conf.read_text() == conf_before
    assert not Path(manifest.set_aside_path).exists()
    assert dbpath.plan_restore(str(db)).action == "already_restored"


def test_restore_refuses_a_db_path_it_did_not_create(member: tuple[Path, Path]) -> None:
    db, conf = member
    manifest = set_aside(db, conf)
    # another directory in its place: made while the created one still exists, so that the
    # filesystem cannot hand it the same inode number (an rmdir then mkdir may reuse it)
    created = db.with_name("created-by-set-aside")
    db.rename(created)
    db.mkdir()
    created.rmdir()
    (db / "someone-elses.wt").write_bytes(b"?")
    with pytest.raises(UnexpectedDbPathError, match="refuses to remove"):
        dbpath.plan_restore(str(db))
    assert Path(manifest.set_aside_path).is_dir()


def test_restore_without_a_copy_is_refused(member: tuple[Path, Path]) -> None:
    with pytest.raises(NoSetAsideCopyError):
        dbpath.plan_restore(str(member[0]))


def test_purge_keeps_the_copy_until_the_db_path_is_on_kmip(member: tuple[Path, Path]) -> None:
    db, conf = member
    manifest = set_aside(db, conf)
    (db / "partial.wt").write_bytes(b"x")
    with pytest.raises(UnexpectedDbPathError, match="only good"):
        dbpath.plan_purge(str(db))
    write_storage_bson(db, {"kmip": {"keyId": "9"}})
    plan = dbpath.plan_purge(str(db))
    assert [entry["set_aside_path"] for entry in plan.remove] == [manifest.set_aside_path]
    assert Path(manifest.set_aside_path).is_dir()  # planning removes nothing
    done = dbpath.apply_purge(plan)
    assert [m.state for m in done] == ["purged"]
    assert not Path(manifest.set_aside_path).exists() and not Path(manifest.config_backup).exists()
    assert Path(manifest.path).is_file()  # the record stays
    assert dbpath.plan_purge(str(db)).remove == []


def test_manifests_of_another_db_path_are_ignored(tmp_path: Path, member: tuple[Path, Path]) -> None:
    db, conf = member
    set_aside(db, conf)
    other = tmp_path / "mongodb2"
    other.mkdir()
    assert dbpath.manifests_for(str(other)) == []
    assert len(dbpath.manifests_for(str(db))) == 1
    assert os.path.basename(dbpath.manifests_for(str(db))[0].path).endswith(".kmipops-conversion.json")


def test_a_rename_the_kernel_refuses_leaves_nothing_behind(
    member: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, conf = member
    before = tree(db.parent)

    def exdev(src: str, dst: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    plan = dbpath.plan_set_aside(str(db), str(conf), NOW)
    monkeypatch.setattr(dbpath.os, "rename", exdev)
    with pytest.raises(NotSameFilesystemError, match="EXDEV"):
        dbpath.apply_set_aside(plan, str(conf), NO_SELINUX)
    assert tree(db.parent) == before
