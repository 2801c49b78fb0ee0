# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The systemd side of a member: its unit's state, and the unit's EnvironmentFile.

Percona's ``mongod.service`` runs ``mongod ${OPTIONS}`` (through ``bash -c "${NUMACTL} ...
> ${STDOUT} 2> ${STDERR}"``) with the variables of ``EnvironmentFile=-/etc/default/mongod``
(Debian) or ``/etc/sysconfig/mongod`` (RHEL), where ``OPTIONS="-f /etc/mongod.conf"``. The
rotation runs mongod itself, outside the unit, so the file is read here the way systemd reads
it: the other variables go into mongod's environment, ``OPTIONS`` may only name the config file
(every other mongod option must be in that file, so that the rotation sees what the service
sees), and ``NUMACTL``, ``STDOUT``, ``STDERR`` (the unit's wrapper) are not used.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.errors import MongodRunningError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: variables of Percona's unit that shape its ExecStart, not mongod's environment
UNIT_WRAPPER_VARIABLES = ("NUMACTL", "STDOUT", "STDERR")
OPTIONS_VARIABLE = "OPTIONS"
#: ActiveState values of a unit whose process runs or is about to (systemd.unit(5))
ACTIVE_STATES = ("active", "activating", "deactivating", "reloading", "refreshing")
#: what unit_state asks systemctl show
SHOW_PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "Restart",
    "Result",
    "ExecMainStatus",
    "ExecMainCode",
)


@dataclasses.dataclass
class EnvironmentFile:
    path: str
    variables: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the config file OPTIONS names (``-f X``, ``--config X``, ``--config=X``), or None
    options_config: str | None = None
    ignored: list[str] = dataclasses.field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        """Names only: values may be secrets."""
        return {
            "path": self.path,
            "variables": sorted(self.variables),
            "options_config": self.options_config,
            "ignored": sorted(self.ignored),
        }


def read_environment_file(path: str, option: str = "environment_file") -> EnvironmentFile:
    """Parse ``KEY=VALUE`` lines as systemd's EnvironmentFile= (comments ``#``/``;``, quotes,
    backslash continuations); ``export`` prefixes (the file is also sourced by Percona's helper
    script) are accepted."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise InvalidOptionError(option, f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOptionError(option, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    result = EnvironmentFile(path)
    for number, line in _logical_lines(text):
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            # the line is named, never shown: it could hold a secret
            raise InvalidOptionError(option, f"line {number} of {path} is not NAME=VALUE")
        try:
            value = " ".join(shlex.split(raw, comments=False, posix=True))
        except ValueError:
            raise InvalidOptionError(
                option, f"line {number} of {path}: unbalanced quotes in the value of {name}"
            ) from None
        if name in UNIT_WRAPPER_VARIABLES:
            result.ignored.append(name)
        elif name == OPTIONS_VARIABLE:
            result.options_config = _config_from_options(value, path, option)
        else:
            result.variables[name] = value
    return result


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped[0] in "#;"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        lines.append((start, (buffer + stripped).strip()))
        buffer = ""
    if buffer.strip():
        lines.append((start, buffer.strip()))
    return lines


def _config_from_options(value: str, path: str, option: str) -> str | None:
    """The config file of ``OPTIONS``; any other mongod option there is refused by name."""
    words = shlex.split(value)
    config: str | None = None
    others: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-f", "--config") and index + 1 < len(words):
            config = words[index + 1]
            index += 2
            continue
        if word.startswith("--config="):
            config = word.split("=", 1)[1]
        elif word.startswith("-f") and len(word) > 2:
            config = word[2:]
        elif word.startswith("-"):
            others.append(word.split("=", 1)[0])
        index += 1
    if others:
        raise InvalidOptionError(
            option,
            f"OPTIONS in {path} passes mongod options besides the config file ({', '.join(others)}): the "
            "rotation runs mongod with the config file only and would not see the same settings as the service. "
            "Move them into mongod.conf",
        )
    return config


@dataclasses.dataclass
class UnitState:
    name: str
    load_state: str | None = None
    active_state: str | None = None
    sub_state: str | None = None
    main_pid: int | None = None
    restart: str | None = None
    #: why the unit last stopped (``success``, ``exit-code``, ``signal``, ``timeout``...)
    result: str | None = None
    #: the exit status of the last main process (with ``exec_main_code`` ``exited``) or its signal
    exec_main_status: int | None = None
    exec_main_code: str | None = None

    @property
    def running(self) -> bool:
        return self.active_state in ACTIVE_STATES

    @property
    def stopped(self) -> bool:
        """No process runs and none is coming: inactive or failed (``activating``/``auto-restart``
        is not stopped: systemd starts the process again), or active with its process gone (a
        unit with RemainAfterExit)."""
        if self.active_state in ("inactive", "failed"):
            return True
        return self.active_state == "active" and self.sub_state == "exited"

    def describe(self) -> str:
        """One line: state, substate, result, the last main process's exit."""
        text = f"{self.name} is {self.active_state} ({self.sub_state}"
        if self.result and self.result != "success":
            text += f", result {self.result}"
        if self.exec_main_code and self.exec_main_status is not None and not self.running:
            what = "status" if self.exec_main_code == "exited" else "signal"
            text += f", main process {self.exec_main_code} with {what} {self.exec_main_status}"
        return text + ")"

    def as_result(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "load_state": self.load_state,
            "active_state": self.active_state,
            "sub_state": self.sub_state,
            "main_pid": self.main_pid,
            "restart": self.restart,
            "result": self.result,
            "exec_main_status": self.exec_main_status,
            "exec_main_code": self.exec_main_code,
        }


def unit_state(systemctl: str, name: str, timeout: float = 30.0, option: str = "service_name") -> UnitState:
    """``systemctl show`` of the unit; raise when it does not exist or cannot be asked."""
    try:
        completed = subprocess.run(
            [systemctl, "show", f"--property={','.join(SHOW_PROPERTIES)}", "--", name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidOptionError(option, f"cannot ask systemd about {name}: {exc}") from None
    if completed.returncode != 0:
        raise InvalidOptionError(
            option, f"systemctl show {name} failed ({completed.returncode}): {completed.stderr.strip()[:300]}"
        )
    values: dict[str, str] = {}
    for line in completed.stdout.splitlines():
        key, _sep, value = line.partition("=")
        values[key.strip()] = value.strip()
    pid = values.get("MainPID", "")
    state = UnitState(
        name=name,
        load_state=values.get("LoadState") or None,
        active_state=values.get("ActiveState") or None,
        sub_state=values.get("SubState") or None,
        main_pid=int(pid) if pid.isdigit() and int(pid) > 0 else None,
        restart=values.get("Restart") or None,
        result=values.get("Result") or None,
        exec_main_status=_int_or_none(values.get("ExecMainStatus")),
        exec_main_code=_exec_code(values.get("ExecMainCode")),
    )
    if state.load_state == "not-found":
        raise InvalidOptionError(option, f"systemd has no unit {name}")
    return state


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().lstrip("-").isdigit() else None


#: ExecMainCode as systemctl show gives it (a number of waitid(2)'s si_code) in words
_EXEC_CODES = {"1": "exited", "2": "killed", "3": "dumped"}


def _exec_code(text: str | None) -> str | None:
    if not text or text == "0":
        return None
    return _EXEC_CODES.get(text.strip(), text.strip())


def refuse_running_unit(state: UnitState) -> None:
    if state.running:
        raise MongodRunningError(
            f"the systemd unit {state.name} is {state.active_state} ({state.sub_state}, MainPID {state.main_pid}): "
            f"stop it first (systemctl stop {state.name}) and wait until mongod has exited - a member quiesces for "
            "up to shutdownTimeoutMillisForSignaledShutdown (15 s) before it releases the dbPath",
            service=state.as_result(),
        )


def same_file(left: str, right: str) -> bool:
    try:
        return os.path.samefile(left, right)
    except OSError:
        return os.path.realpath(left) == os.path.realpath(right)
