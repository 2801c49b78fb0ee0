# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Pre-flight facts of one member's conversion to KMIP, read without changing anything.

- what the dbPath holds (KMIP, Vault, key file, plain, nothing) and what mongod.conf configures:
  a member whose data **and** configuration are already KMIP is skipped;
- disk: initial sync writes a second copy of the data next to the set-aside one, on the same
  filesystem, so the free space there must hold the data size times a headroom;
- time: the initial sync is estimated as a fixed start-up plus data size / copy rate (a small
  dbPath still takes the start-up: mongod's start, the sync source choice, the clone's set-up); the
  sync source's oplog must cover
  it with the operator's margin, else the member would end "too stale" (RECOVERING) and never
  finish - refused before anything is touched.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.dbpath import (
    active_manifest,
    data_encryption_of,
    disk_usage_bytes,
    manifests_for,
    real_db_path,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import command
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import to_plain
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import DEFAULT_DB_PATH
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.view import oplog_capacity_window, oplog_fill

with PYMONGO.importing():
    from pymongo.errors import PyMongoError

MIB = 1024 * 1024

PREFLIGHT_ARGSPEC: dict[str, dict[str, Any]] = {
    "config": {"type": "path", "default": "/etc/mongod.conf"},
    "db_path": {"type": "path"},
    "copy_rate_mib_per_second": {"type": "float", "default": 20.0},
    "sync_startup_seconds": {"type": "float", "default": 10.0},
    "oplog_window_seconds": {"type": "float"},
    "read_oplog_window": {"type": "bool", "default": False},
    "oplog_window_margin": {"type": "float", "default": 3.0},
    "disk_headroom": {"type": "float", "default": 1.2},
}


def config_key_management(conf: MongodConf) -> str:
    """What mongod.conf configures: ``kmip``, ``vault``, ``keyfile`` or ``none``."""
    security = to_plain(conf.security) or {}
    if not security.get("enableEncryption"):
        return "none"
    if isinstance(security.get("kmip"), dict) and security["kmip"].get("serverName"):
        return "kmip"
    if security.get("vault") is not None:
        return "vault"
    if security.get("encryptionKeyFile") is not None:
        return "keyfile"
    return "none"


def validate(params: dict[str, Any]) -> None:
    # "nan" and "inf" pass Ansible's float type and every comparison below would let them through
    for option, spec in PREFLIGHT_ARGSPEC.items():
        if spec["type"] == "float" and params.get(option) is not None and not math.isfinite(params[option]):
            raise InvalidOptionError(option, "must be a finite number")
    if params["copy_rate_mib_per_second"] <= 0:
        raise InvalidOptionError("copy_rate_mib_per_second", "must be greater than 0")
    if params["sync_startup_seconds"] < 0:
        raise InvalidOptionError("sync_startup_seconds", "must not be negative")
    if params["oplog_window_margin"] < 1:
        raise InvalidOptionError("oplog_window_margin", "must be at least 1 (the oplog must cover the sync itself)")
    if params["disk_headroom"] < 1:
        raise InvalidOptionError("disk_headroom", "must be at least 1 (the new copy needs the data size)")
    if params.get("oplog_window_seconds") is not None and params["oplog_window_seconds"] < 0:
        raise InvalidOptionError("oplog_window_seconds", "must not be negative")


def oplog_window(client: Any, member: str) -> dict[str, Any]:
    """First and last entry of the member's oplog (``rs.printReplicationInfo()``'s window)."""
    oplog = client["local"]["oplog.rs"]
    try:
        first = oplog.find({}, {"ts": 1, "wall": 1}).sort("$natural", 1).limit(1).next()
        last = oplog.find({}, {"ts": 1, "wall": 1}).sort("$natural", -1).limit(1).next()
    except StopIteration:
        return {"oplog_window_seconds": 0.0, "oplog_first": None, "oplog_last": None, "oplog_fill_ratio": None}
    except Exception:
        command(client, member, "ping")  # raises the typed error (unreachable, auth)
        raise
    try:
        stats = client["local"].command("collStats", "oplog.rs")
    except PyMongoError:
        stats = None  # as mongod_replset_info: the fill only refines the window, it never fails the check
    first_time = first["ts"].as_datetime()
    last_time = last["ts"].as_datetime()
    # the same reading as mongod_replset_info's: a young oplog that truncates nothing yet
    # is judged on what it will hold at the write rate so far, not on its age
    span = max((last_time - first_time).total_seconds(), 0.0)
    fill = oplog_fill(stats)
    return {
        "oplog_window_seconds": oplog_capacity_window(span, fill),
        "oplog_span_seconds": span,
        "oplog_fill_ratio": fill,
        "oplog_first": first_time.isoformat(),
        "oplog_last": last_time.isoformat(),
    }


@dataclasses.dataclass
class Preflight:
    params: dict[str, Any]
    oplog: dict[str, Any] | None = None

    def run(self) -> dict[str, Any]:
        params = self.params
        validate(params)
        conf = MongodConf.read(params["config"], option="config")
        db_path = params["db_path"] or str(conf.db_path or DEFAULT_DB_PATH)
        real = real_db_path(db_path)
        exists = os.path.isdir(real)
        data_encryption = data_encryption_of(real) if exists else "none"
        configured = config_key_management(conf)
        data_bytes = disk_usage_bytes(real) if exists else 0
        fs_path = real if exists else os.path.dirname(real)
        vfs = os.statvfs(fs_path)
        free_bytes = vfs.f_bavail * vfs.f_frsize
        needed_bytes = int(data_bytes * params["disk_headroom"])
        rate = params["copy_rate_mib_per_second"] * MIB
        estimate = params["sync_startup_seconds"] + data_bytes / rate
        window = params.get("oplog_window_seconds")
        if window is None and self.oplog is not None:
            window = self.oplog["oplog_window_seconds"]
        required_window = estimate * params["oplog_window_margin"]
        already_kmip = data_encryption == "kmip" and configured == "kmip"
        problems: list[str] = []
        if not already_kmip:
            if data_encryption == "kmip":
                problems.append(
                    f"{real} holds KMIP-encrypted data but mongod.conf configures {configured}: fix the configuration "
                    "(mongod_kmip_config), this is not a conversion"
                )
            if free_bytes < needed_bytes:
                problems.append(
                    f"not enough free disk space on the filesystem of {real}: {free_bytes} bytes free, the new copy "
                    f"needs {needed_bytes} ({data_bytes} bytes of data x disk_headroom {params['disk_headroom']})"
                )
            if window is None:
                problems.append(
                    "the sync source's oplog window is unknown: give oplog_window_seconds or read_oplog_window=true"
                )
            elif window < required_window:
                problems.append(
                    f"the sync source's oplog window ({window:.0f} s) is shorter than the estimated initial sync "
                    f"({estimate:.0f} s: {params['sync_startup_seconds']} s to start, then {data_bytes} bytes at "
                    f"{params['copy_rate_mib_per_second']} MiB/s) x "
                    f"oplog_window_margin {params['oplog_window_margin']} = {required_window:.0f} s: the member would "
                    "fall off the oplog (too stale). Grow the oplog (replSetResizeOplog) or convert at a quieter time"
                )
        current = active_manifest(real)
        result: dict[str, Any] = {
            "changed": False,
            "config": params["config"],
            "db_path": real,
            "db_path_exists": exists,
            "data_encryption": data_encryption,
            "config_key_management": configured,
            "already_kmip": already_kmip,
            "data_bytes": data_bytes,
            "free_bytes": free_bytes,
            "needed_bytes": needed_bytes,
            "disk_ok": free_bytes >= needed_bytes,
            "copy_rate_mib_per_second": params["copy_rate_mib_per_second"],
            "sync_startup_seconds": params["sync_startup_seconds"],
            "estimated_sync_seconds": round(estimate, 1),
            "oplog_window_seconds": window,
            "required_oplog_window_seconds": round(required_window, 1),
            "oplog_ok": None if window is None else window >= required_window,
            "set_aside": current.as_result() if current else None,
            "set_aside_copies": [m.as_result() for m in manifests_for(real)],
            "problems": problems,
            "ready": not already_kmip and not problems,
            "checked_at": datetime.datetime.now(tz=datetime.UTC).isoformat(),
        }
        if self.oplog is not None:
            result["oplog"] = self.oplog
        return result
