# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The member's own mongod while the set is awaited (mongod_replset_info ``watch_service``).

A member whose mongod exits right after its start (every KMIP server unreachable, a key it
cannot use, a dbPath it cannot open) is never seen caught up: with ``Type=simple`` units
``systemctl start`` succeeds before mongod even reads its keystore. Waiting out the whole
deadline then only delays the failure. Each poll of the wait therefore also asks systemd about
the member's unit on the host the module runs on, and a unit that is inactive or failed ends the
wait at once (``Waiter.until``'s ``hopeless``) with ``error_kind=member_stopped``: the unit's
state and result, the last lines of mongod's log (``watch_config``'s systemLog.path) and of the
unit's journal, without secrets.

Secrets: log 21951 (PSMDB echoes the KMIP client certificate password there) is never read, the
values of the config's secret options are masked in every line returned, and a line that names
a password or a secret is withheld whole.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import KmipOpsError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_config import MemberConfig, redactor
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import (
    OPTIONS,
    ReverseLineReader,
    parse_line,
    scan_log,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.service import UnitState, unit_state

#: lines of mongod's log and of the unit's journal returned with the error
TAIL_LINES = 12
#: bytes read from the end of mongod's log for them (and for its last run's outcome)
TAIL_BYTES = 256 * 1024
#: longest line returned
LINE_CHARS = 400
#: a line that may carry a secret is withheld whole
_SECRET_WORDS = re.compile(r"pass(word|phrase|wd)|secret|private key", re.IGNORECASE)
WITHHELD = "(line withheld - it may hold a secret)"


class MemberStoppedError(KmipOpsError):
    """The member's mongod is not running (its unit is inactive or failed): waiting cannot help."""

    kind = "member_stopped"

    def __init__(self, message: str, facts: dict[str, Any]) -> None:
        super().__init__(message)
        self.facts = facts

    def details(self) -> dict[str, Any]:
        return dict(self.facts)


@dataclass
class ServiceWatch:
    """Asks systemd about ``service`` at each poll; builds the error once it is seen stopped."""

    service: str
    systemctl: Callable[[], str]
    config: str | None = None
    journalctl: Callable[[], str | None] = lambda: None
    #: the member's name, for the message
    member: str | None = None
    last: UnitState | None = field(default=None, init=False)

    def poll(self) -> UnitState:
        self.last = unit_state(self.systemctl(), self.service, option="watch_service")
        return self.last

    def hopeless(self, state: UnitState | None) -> MemberStoppedError | None:
        """The error that ends the wait when ``state`` says mongod is not running; else None."""
        if state is None or not state.stopped:
            return None
        config = self._config()
        redact = redactor(config.secrets if config else [])
        log_path = config.log_path if config and config.log_destination == "file" else None
        log = self._log(log_path, redact)
        journal = self._journal(redact)
        who = f"{self.member}: " if self.member else ""
        message = f"{who}mongod is not running, the set will not see it caught up: {state.describe()}"
        outcome = log.get("last_run") or {}
        if outcome.get("error"):
            message += f"; mongod's last run: {outcome['error']}"
        elif journal:
            message += f"; journal: {journal[-1]}"
        return MemberStoppedError(
            redact(message), {"service": state.as_result(), "mongod_log": log, "journal": journal}
        )

    def _config(self) -> MemberConfig | None:
        if not self.config:
            return None
        try:
            return MemberConfig.read(self.config, option="watch_config")
        except KmipOpsError:
            return None

    @staticmethod
    def _log(path: str | None, redact: Callable[[str], str]) -> dict[str, Any]:
        """The last lines of mongod's log and what its last run ended with."""
        if path is None:
            return {"path": None, "lines": [], "last_run": None}
        result: dict[str, Any] = {"path": path, "lines": [], "last_run": None}
        try:
            lines: list[str] = []
            for raw in ReverseLineReader(path, TAIL_BYTES):
                entry = parse_line(raw)
                if entry is not None and entry.get("id") == OPTIONS:
                    continue  # never read: PSMDB echoes the KMIP password there
                lines.append(safe_line(raw.decode("utf-8", errors="replace"), redact))
                if len(lines) >= TAIL_LINES:
                    break
            result["lines"] = list(reversed(lines))
        except OSError as exc:
            result["error"] = f"cannot read {path}: {exc.strerror}"
            return result
        scan = scan_log(path, TAIL_BYTES, max_runs=1)
        if scan.runs:
            run = scan.runs[0]
            error = (run.encryption_error or {}).get("message") or run.fatal_error
            result["last_run"] = {
                "pid": run.pid,
                "started_at": run.started_at,
                "outcome": run.outcome(),
                "exit_code": run.exit_code,
                "error": redact(str(error)) if error else None,
            }
        return result

    def _journal(self, redact: Callable[[str], str]) -> list[str]:
        """The unit's last journal lines (systemd's own: start, exit status), when journalctl works."""
        journalctl = self.journalctl()
        if not journalctl:
            return []
        try:
            completed = subprocess.run(
                [journalctl, "--no-pager", "-q", "--output=short-iso", f"--lines={TAIL_LINES}", "-u", self.service],
                capture_output=True,
                text=True,
                timeout=15,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
        if completed.returncode != 0:
            return []
        return [safe_line(line, redact) for line in completed.stdout.splitlines() if line.strip()][-TAIL_LINES:]


def safe_line(line: str, redact: Callable[[str], str]) -> str:
    """One line as returned: secret values masked, a line naming a password withheld, cut short."""
    text = redact(line.rstrip("\n"))
    if _SECRET_WORDS.search(text):
        return WITHHELD
    entry = parse_line(text)
    if entry is not None:
        # a logv2 document in a shorter form: time, id, message, attributes
        attr = json.dumps(entry.get("attr"), sort_keys=True, default=str) if entry.get("attr") else ""
        stamp = entry.get("t", {}).get("$date") if isinstance(entry.get("t"), dict) else entry.get("t")
        text = f"{stamp} {entry.get('s', '')} {entry.get('id')} {entry.get('msg', '')} {attr}".strip()
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 3] + "..."
