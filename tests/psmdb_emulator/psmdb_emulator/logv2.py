"""mongod's structured JSON log lines (logv2): {"t","s","c","id","ctx","msg","attr"}."""

from __future__ import annotations

import datetime
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

SEVERITIES = ("F", "E", "W", "I", "D1", "D2")


def rename_existing_log(path: str | None, append: bool) -> str | None:
    """mongod's ServerLogRedirection initializer: with ``logAppend: false`` an existing log file is renamed to
    ``<path>.<UTC YYYY-MM-DDTHH-MM-SS>`` (terseCurrentTimeForFilename) and a new one is started, never
    truncated; the line 20697 goes to stdout (the log is not open yet). Returns the new name of the old file."""
    if not path or append or not os.path.isfile(path):
        return None
    absolute = os.path.abspath(path)
    target = f"{absolute}.{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H-%M-%S')}"
    os.rename(absolute, target)
    line = {
        "t": {"$date": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")},
        "s": "I",
        "c": "CONTROL",
        "id": 20697,
        "ctx": "main",
        "msg": "Renamed existing log file",
        "attr": {"oldLogPath": absolute, "newLogPath": target},
    }
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return target


class Logger:
    """Writes one JSON document per line to systemLog.path (or stdout), like mongod."""

    def __init__(
        self, path: str | None = None, append: bool = True, after_log: Callable[[int], None] | None = None
    ) -> None:
        # re-entrant: a signal handler may log while the interrupted thread holds the lock
        self._lock = threading.RLock()
        # called with each log id once its line is written (mongod's fork waits for 23016)
        self._after_log = after_log
        self._stream: TextIO
        if path:
            self._stream = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        else:
            self._stream = sys.stdout
        self._owns_stream = bool(path)

    def log(
        self,
        severity: str,
        component: str,
        log_id: int,
        msg: str,
        attr: dict[str, Any] | None = None,
        ctx: str | None = None,
    ) -> None:
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        now = datetime.datetime.now(datetime.UTC).astimezone()
        line: dict[str, Any] = {
            "t": {"$date": now.isoformat(timespec="milliseconds")},
            "s": severity,
            "c": component,
            "id": log_id,
            "ctx": ctx or threading.current_thread().name,
            "msg": msg,
        }
        if attr:
            line["attr"] = attr
        text = json.dumps(line, default=str, separators=(",", ":"))
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()
        if self._after_log is not None:
            self._after_log(log_id)

    def close(self) -> None:
        with self._lock:
            if self._owns_stream:
                self._stream.close()
