"""mongod's structured JSON log lines (logv2): {"t","s","c","id","ctx","msg","attr"}."""

from __future__ import annotations

import datetime
import json
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

SEVERITIES = ("F", "E", "W", "I", "D1", "D2")


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
