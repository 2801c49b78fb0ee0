# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: writes every task result as one JSON line to $KMIPLAB_RESULTS_FILE.

ansible-core 2.19 ships no json callback (that lives in ansible.posix, not installed here),
so kmiplab's playbook runner enables this aggregate callback next to the default stdout one.
Results arrive already censored by Ansible for no_log tasks.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: kmiplab_results
type: aggregate
short_description: write task results as JSON lines (kmipops.psmdb tests only)
description:
  - Writes one JSON object per task result to the file named by E(KMIPLAB_RESULTS_FILE).
requirements:
  - enable in ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kmiplab_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("KMIPLAB_RESULTS_FILE")
        self._play = ""

    def _write(self, record: dict[str, Any]) -> None:
        if not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name()

    def _record(self, result: Any, status: str) -> None:
        # public names since ansible-core 2.19; _task/_host/_result before
        task = getattr(result, "task", None) or result._task
        host = getattr(result, "host", None) or result._host
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        self._write(
            {
                "kind": "task",
                "play": self._play,
                "task": task.get_name(),
                "action": task.action,
                "host": host.get_name(),
                "status": status,
                "result": dict(data),
            }
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        data = getattr(result, "result", None)
        changed = bool((data if data is not None else result._result).get("changed"))
        self._record(result, "changed" if changed else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = sorted(stats.processed.keys())
        self._write({"kind": "stats", "stats": {host: stats.summarize(host) for host in hosts}})
