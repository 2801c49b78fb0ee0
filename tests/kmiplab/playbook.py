# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``ansible-playbook`` from the project venv against localhost and collect task results.

The collection is found through ``<repo>/.build/collections`` (a symlink to the checkout, see
``ensure_collection_link``). Task results are gathered by the test-only ``kmiplab_results``
callback (ansible-core has no JSON callback of its own), one record per task and host.
Extra vars go through a 0600 JSON file, never the command line, so passwords do not show in
``ps``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmiplab.process_group import kill_group

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO_ROOT / ".build" / "collections"
COLLECTION_LINK = COLLECTIONS_PATH / "ansible_collections" / "kmipops" / "psmdb"
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
VENV_BIN = Path(sys.executable).parent


def ensure_collection_link() -> Path:
    """Create ``.build/collections/ansible_collections/kmipops/psmdb -> repo`` if missing."""
    if COLLECTION_LINK.is_symlink() or COLLECTION_LINK.exists():
        if COLLECTION_LINK.resolve() != REPO_ROOT:
            raise RuntimeError(f"{COLLECTION_LINK} exists but does not point to {REPO_ROOT}")
        return COLLECTIONS_PATH
    COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # created at the same moment by another test run
        COLLECTION_LINK.symlink_to(REPO_ROOT, target_is_directory=True)
    return COLLECTIONS_PATH


@dataclasses.dataclass(frozen=True)
class TaskResult:
    play: str
    task: str
    action: str
    host: str
    #: ok, changed, failed, ignored (failed with ignore_errors), skipped, unreachable
    status: str
    result: dict[str, Any]

    @property
    def changed(self) -> bool:
        return self.status == "changed"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "ignored", "unreachable")


@dataclasses.dataclass(frozen=True)
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    tasks: list[TaskResult]
    #: per host: ok, changed, failures, skipped, unreachable, ... (Ansible's play recap)
    stats: dict[str, dict[str, int]]

    def task(self, name: str, host: str | None = None) -> TaskResult:
        """The last result of the task called ``name`` (on ``host`` if given).

        Role tasks are reported as ``<role> : <name>``; ``name`` alone matches them too.
        """
        matches = [
            t
            for t in self.tasks
            if (t.task == name or t.task.endswith(f" : {name}")) and (host is None or t.host == host)
        ]
        if not matches:
            raise KeyError(f"no result for task {name!r}; tasks were {[t.task for t in self.tasks]}")
        return matches[-1]

    def changed_tasks(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.changed]

    def failed_tasks(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.status in ("failed", "unreachable")]

    def changed_count(self, host: str = "localhost") -> int:
        return int(self.stats.get(host, {}).get("changed", 0))

    def explain(self) -> str:
        """rc, failed tasks and output tails: for assertion messages."""
        failed = "\n".join(f"  {t.task}: {t.result.get('msg', t.result)}" for t in self.failed_tasks())
        return (
            f"rc={self.rc}\nfailed tasks:\n{failed or '  (none)'}\n"
            f"--- stdout tail ---\n{self.stdout[-3000:]}\n--- stderr tail ---\n{self.stderr[-2000:]}"
        )


def run_playbook(
    playbook: str | os.PathLike[str],
    *,
    extra_vars: Mapping[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    workdir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    python_interpreter: str | None = None,
) -> PlaybookResult:
    """Run a playbook (YAML text, or a path to a file) against localhost, connection local.

    ``python_interpreter`` is the managed host's ``ansible_python_interpreter`` (default: this
    venv's python). ``workdir`` holds the playbook/inventory/results files (default: a fresh
    temporary directory, removed afterwards).
    """
    ensure_collection_link()
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="kmiplab-play-") as tmp:
            return _run(playbook, extra_vars, check, diff, verbosity, Path(tmp), env, timeout, python_interpreter)
    return _run(playbook, extra_vars, check, diff, verbosity, Path(workdir), env, timeout, python_interpreter)


def _run(
    playbook: str | os.PathLike[str],
    extra_vars: Mapping[str, Any] | None,
    check: bool,
    diff: bool,
    verbosity: int,
    workdir: Path,
    env: Mapping[str, str] | None,
    timeout: float,
    python_interpreter: str | None,
) -> PlaybookResult:
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(playbook, str) and "\n" in playbook:
        playbook_path = workdir / "playbook.yml"
        playbook_path.write_text(playbook, encoding="utf-8")
    else:
        playbook_path = Path(playbook)
        if not playbook_path.is_file():
            raise FileNotFoundError(f"playbook: {playbook_path} is not a file (pass YAML text with newlines or a path)")
    interpreter = python_interpreter or sys.executable
    inventory = workdir / "inventory.ini"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={interpreter}\n", encoding="utf-8"
    )
    results_file = workdir / "results.jsonl"
    results_file.unlink(missing_ok=True)
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook_path)]
    if extra_vars:
        vars_file = workdir / "extra_vars.json"
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dict(extra_vars), out)
        command += ["-e", f"@{vars_file}"]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    run_env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
        "ANSIBLE_CALLBACKS_ENABLED": "kmiplab_results",
        "KMIPLAB_RESULTS_FILE": str(results_file),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote-tmp"),
        # no ansible.cfg from the caller's cwd or home may change the run
        "ANSIBLE_CONFIG": str(workdir / "ansible.cfg"),
        **(env or {}),
    }
    (workdir / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    # own process group: on timeout or interrupt the whole tree (modules, pip...) is killed
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        # the whole tree, and only then reap the leader (which keeps the group id ours)
        kill_group(process.pid)
        process.communicate()
        raise
    completed = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    tasks: list[TaskResult] = []
    stats: dict[str, dict[str, int]] = {}
    if results_file.exists():
        for line in results_file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["kind"] == "task":
                tasks.append(
                    TaskResult(
                        play=record["play"],
                        task=record["task"],
                        action=record["action"],
                        host=record["host"],
                        status=record["status"],
                        result=record["result"],
                    )
                )
            elif record["kind"] == "stats":
                stats = record["stats"]
    return PlaybookResult(
        rc=completed.returncode, stdout=completed.stdout, stderr=completed.stderr, tasks=tasks, stats=stats
    )
