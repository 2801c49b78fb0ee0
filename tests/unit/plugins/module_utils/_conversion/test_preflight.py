# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_conversion.preflight: skip members on KMIP, refuse short oplog windows and full disks."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion import preflight
from unit.utils.db_path import write_storage_bson

MIB = 1024 * 1024
StatVfs = namedtuple("StatVfs", "f_bavail f_frsize")


def params(conf: Path, **extra: Any) -> dict[str, Any]:
    base = {key: spec.get("default") for key, spec in preflight.PREFLIGHT_ARGSPEC.items()}
    base.update(config=str(conf), **extra)
    return base


@pytest.fixture
def member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    db = tmp_path / "db"
    write_storage_bson(db, None)
    conf = tmp_path / "mongod.conf"
    conf.write_text(f"storage:\n  dbPath: {db}\n")
    # 10 MiB of data, 100 MiB free
    monkeypatch.setattr(preflight, "disk_usage_bytes", lambda path: 10 * MIB)
    monkeypatch.setattr(preflight.os, "statvfs", lambda path: StatVfs(100 * 256, 4096))
    return db, conf


def test_a_plain_member_with_room_and_time_is_ready(member: tuple[Path, Path]) -> None:
    _db, conf = member
    result = preflight.Preflight(params(conf, copy_rate_mib_per_second=1.0, oplog_window_seconds=3600)).run()
    assert result["ready"] and not result["problems"]
    assert result["data_encryption"] == "unencrypted" and result["config_key_management"] == "none"
    # 10 s of start-up (the default) + 10 MiB at 1 MiB/s, x margin 3
    assert result["estimated_sync_seconds"] == 20.0 and result["required_oplog_window_seconds"] == 60.0
    assert result["disk_ok"] and result["oplog_ok"]


def test_the_start_up_of_a_sync_counts_even_for_little_data(
    member: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _db, conf = member
    monkeypatch.setattr(preflight, "disk_usage_bytes", lambda path: MIB // 10)
    result = preflight.Preflight(params(conf, sync_startup_seconds=30.0, oplog_window_seconds=60)).run()
    # 30 s + 0.1 MiB at 20 MiB/s = 30.0 s; x 3 = 90 s > the 60 s window
    assert result["estimated_sync_seconds"] == 30.0 and result["oplog_ok"] is False
    assert "30.0 s to start" in result["problems"][0]
    result = preflight.Preflight(params(conf, sync_startup_seconds=0.0, oplog_window_seconds=60)).run()
    assert result["estimated_sync_seconds"] == 0.0 and result["oplog_ok"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("sync_startup_seconds", -1.0),
        ("copy_rate_mib_per_second", float("nan")),
        ("oplog_window_seconds", float("inf")),
    ],
)
def test_a_negative_or_non_finite_figure_is_refused(member: tuple[Path, Path], option: str, value: float) -> None:
    with pytest.raises(InvalidOptionError, match=option):
        preflight.Preflight(params(member[1], **{option: value})).run()


def test_a_short_oplog_window_is_a_problem(member: tuple[Path, Path]) -> None:
    _db, conf = member
    result = preflight.Preflight(params(conf, copy_rate_mib_per_second=1.0, oplog_window_seconds=20)).run()
    assert not result["ready"] and result["oplog_ok"] is False
    assert "too stale" in result["problems"][0]


def test_an_unknown_oplog_window_is_a_problem(member: tuple[Path, Path]) -> None:
    result = preflight.Preflight(params(member[1])).run()
    assert not result["ready"] and result["oplog_ok"] is None
    assert "unknown" in result["problems"][0]


def test_not_enough_disk_is_a_problem(member: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.os, "statvfs", lambda path: StatVfs(2 * 256, 4096))  # 2 MiB free
    result = preflight.Preflight(params(member[1], oplog_window_seconds=1e6)).run()
    assert not result["disk_ok"] and "free disk space" in result["problems"][0]


def test_a_member_on_kmip_is_skipped(member: tuple[Path, Path]) -> None:
    db, conf = member
    write_storage_bson(db, {"kmip": {"keyId": "3"}})
    conf.write_text(
        conf.read_text() + "security:\n  enableEncryption: true\n  kmip:\n    serverName: k\n"
        "    clientCertificateFile: /c.pem\n"
    )
    result = preflight.Preflight(params(conf)).run()
    assert result["already_kmip"] and not result["ready"] and not result["problems"]


def test_key_file_config_is_seen(member: tuple[Path, Path]) -> None:
    db, conf = member
    (db / "key.db").mkdir()
    conf.write_text(conf.read_text() + "security:\n  enableEncryption: true\n  encryptionKeyFile: /k\n")
    result = preflight.Preflight(params(conf, oplog_window_seconds=1e6)).run()
    assert result["data_encryption"] == "keyfile" and result["config_key_management"] == "keyfile"
    assert result["ready"]


@pytest.mark.parametrize(
    "option, value",
    [
        ("copy_rate_mib_per_second", 0),
        ("oplog_window_margin", 0.5),
        ("disk_headroom", 0.9),
        ("oplog_window_seconds", -1),
    ],
)
def test_bad_numbers_are_refused(member: tuple[Path, Path], option: str, value: float) -> None:
    with pytest.raises(InvalidOptionError, match=option):
        preflight.Preflight(params(member[1], **{option: value})).run()


def test_the_oplog_window_is_read_from_the_first_and_last_entry() -> None:
    import bson
    from pymongo.errors import OperationFailure

    class Cursor:
        def __init__(self, docs: list[dict]) -> None:
            self.docs = docs

        def sort(self, key: str, direction: int) -> Cursor:
            return Cursor(self.docs if direction == 1 else list(reversed(self.docs)))

        def limit(self, n: int) -> Cursor:
            return Cursor(self.docs[:n])

        def next(self) -> dict:
            if not self.docs:
                raise StopIteration
            return self.docs[0]

    entries = [{"ts": bson.Timestamp(1000, 1)}, {"ts": bson.Timestamp(1500, 3)}, {"ts": bson.Timestamp(4600, 1)}]

    class Oplog:
        def find(self, *args: Any) -> Cursor:
            return Cursor(entries)

    stats = {"size": 100 * MIB, "maxSize": 100 * MIB}

    class Local(dict):
        def command(self, name: str, collection: str) -> dict[str, Any]:
            assert (name, collection) == ("collStats", "oplog.rs")
            if "fail" in stats:
                raise OperationFailure("not authorized on local to execute command { collStats }", code=13)
            return stats

    client = {"local": Local({"oplog.rs": Oplog()})}
    # a full oplog: its window is what it holds
    assert preflight.oplog_window(client, "m:27017")["oplog_window_seconds"] == 3600.0
    # a tenth full: it truncates nothing yet and, at the write rate so far, will hold 10 x as long
    stats["size"] = 10 * MIB
    window = preflight.oplog_window(client, "m:27017")
    assert window["oplog_window_seconds"] == 36000.0 and window["oplog_span_seconds"] == 3600.0
    assert window["oplog_fill_ratio"] == 0.1
    # collStats refused (a user with find on the oplog only): the window alone, no failure
    stats.clear()
    stats["fail"] = True
    window = preflight.oplog_window(client, "m:27017")
    assert window["oplog_window_seconds"] == 3600.0 and window["oplog_fill_ratio"] is None
    entries.clear()
    assert preflight.oplog_window(client, "m:27017")["oplog_window_seconds"] == 0.0
    assert os.path.sep  # keep os imported for the monkeypatched statvfs above
