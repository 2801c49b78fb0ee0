# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_dbpath run in-process: refused while mongod holds the dbPath, check mode, a full cycle."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.modules import mongod_dbpath
from unit.utils.db_path import write_storage_bson
from unit.utils.module_runner import run_module


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    db = tmp_path / "db"
    write_storage_bson(db, None)
    path = tmp_path / "mongod.conf"
    path.write_text(f"storage:\n  dbPath: {db}\n")
    return path


def args(conf: Path, state: str) -> dict:
    return {"state": state, "config": str(conf), "service_name": ""}


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_refused_while_mongod_lock_is_held(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = conf.parent / "db"
    before = listing(conf.parent)
    fd = os.open(db / "mongod.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())
        result = run_module(mongod_dbpath, args(conf, "set_aside"), capsys)
    finally:
        os.close(fd)
    assert result["failed"] and result["error_kind"] == "mongod_running"
    assert listing(conf.parent) == sorted([*before, "db/mongod.lock"])


def test_check_mode_plans_and_changes_nothing(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = listing(conf.parent)
    result = run_module(mongod_dbpath, args(conf, "set_aside"), capsys, check=True)
    assert result["changed"] and result["plan"]["action"] == "set_aside"
    assert listing(conf.parent) == before


def test_set_aside_restore_cycle_is_idempotent(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = conf.parent / "db"
    before = listing(db)
    first = run_module(mongod_dbpath, args(conf, "set_aside"), capsys)
    assert first["changed"] and first["set_aside"]["state"] == "set_aside" and listing(db) == []
    assert run_module(mongod_dbpath, args(conf, "set_aside"), capsys)["changed"] is False
    refused = run_module(mongod_dbpath, args(conf, "purged"), capsys)
    assert refused["failed"] and refused["error_kind"] == "unexpected_db_path"
    restored = run_module(mongod_dbpath, args(conf, "restored"), capsys)
    assert restored["changed"] and listing(db) == before
    assert run_module(mongod_dbpath, args(conf, "restored"), capsys)["changed"] is False
    nothing = run_module(mongod_dbpath, args(conf, "purged"), capsys)
    assert nothing["changed"] is False and nothing["plan"]["remove"] == []
