# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kmip_prereqs role against localhost: offline install from a wheelhouse, idempotence, errors.

The wheelhouse is built once with ``pip wheel -r requirements.txt`` (the only step that needs
the package index) and cached under ``<repo>/.cache/kmiplab-wheelhouse/<hash of requirements>``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kmiplab.playbook import REPO_ROOT, PlaybookResult

ROLE_DIR = REPO_ROOT / "roles" / "kmip_prereqs"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
BASE_PYTHON = "/usr/bin/python3"

PLAY = """
- name: kmip_prereqs
  hosts: localhost
  gather_facts: false
  roles:
    - role: kmipops.psmdb.kmip_prereqs
  tasks:
    - name: Show the interpreter
      ansible.builtin.debug:
        var: kmipops_python_interpreter
"""


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    target = REPO_ROOT / ".cache" / "kmiplab-wheelhouse" / digest
    if (target / ".complete").exists():
        return target
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--retries",
            "10",
            "-r",
            str(REQUIREMENTS),
            "-w",
            str(building),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.fail(f"building the wheelhouse failed (needs the package index once):\n{completed.stderr[-3000:]}")
    (building / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return target


def test_role_requirements_are_the_collections() -> None:
    assert (ROLE_DIR / "files" / "requirements.txt").read_text() == REQUIREMENTS.read_text(), (
        "roles/kmip_prereqs/files/requirements.txt must be a copy of requirements.txt"
    )


def _imports(python: Path) -> str:
    completed = subprocess.run(
        [
            str(python),
            "-c",
            "import kmip, pymongo, cryptography, ruamel.yaml, sqlalchemy; "
            "print(kmip.__version__, pymongo.version, cryptography.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.mark.skipif(not Path(BASE_PYTHON).exists(), reason=f"{BASE_PYTHON} (the OS python) is needed")
def test_role_installs_offline_into_a_venv_and_is_idempotent(
    run_playbook: Callable[..., PlaybookResult], wheelhouse: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "opt" / "kmipops" / "venv"
    extra_vars = {
        "kmip_prereqs_venv_path": str(venv),
        "kmip_prereqs_python": BASE_PYTHON,
        "kmip_prereqs_wheelhouse": str(wheelhouse),
    }
    # a fresh venv + pip install of ~16 wheels: minutes when the shared machine is saturated
    first = run_playbook(PLAY, extra_vars=extra_vars, timeout=1800)
    assert first.rc == 0, first.explain()
    # python3-venv is present on the test machine: no package manager involved
    assert first.task("Install the venv package").status == "skipped"
    assert first.task("Create the virtual environment").changed
    assert first.task("Install the collection's Python libraries").changed
    assert first.task("Show the interpreter").result["kmipops_python_interpreter"] == str(venv / "bin" / "python")

    second = run_playbook(PLAY, extra_vars=extra_vars, timeout=1800)
    assert second.rc == 0, second.explain()
    assert second.changed_count() == 0, [t.task for t in second.changed_tasks()]

    # check mode sees a missing library (pip --dry-run) and installs nothing
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "ruamel.yaml"], check=True)
    checked = run_playbook(PLAY, extra_vars=extra_vars, check=True, timeout=1800)
    assert checked.rc == 0, checked.explain()
    assert checked.task("Install the collection's Python libraries").changed
    assert _missing(venv / "bin" / "python", "ruamel.yaml")
    third = run_playbook(PLAY, extra_vars=extra_vars, timeout=1800)
    assert third.rc == 0, third.explain()
    assert third.task("Install the collection's Python libraries").changed
    assert not _missing(venv / "bin" / "python", "ruamel.yaml")

    versions = _imports(venv / "bin" / "python")
    assert versions.startswith("0.11."), versions
    assert (venv / "kmipops-requirements.txt").read_text() == REQUIREMENTS.read_text()


def _missing(python: Path, module: str) -> bool:
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode != 0


def test_role_fails_clearly_before_changing_anything_without_venv_support(
    run_playbook: Callable[..., PlaybookResult], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    result = run_playbook(
        PLAY,
        extra_vars={
            "kmip_prereqs_venv_path": str(venv),
            "kmip_prereqs_python": str(tmp_path / "no-such-python3"),
            "kmip_prereqs_install_os_packages": False,
        },
    )
    assert result.rc != 0
    failed = result.failed_tasks()
    assert [t.task.split(" : ")[-1] for t in failed] == ["Refuse to touch OS packages when told not to"]
    message = failed[0].result["msg"]
    assert "kmip_prereqs_python" in message and "cannot create a virtual environment" in message
    assert not venv.parent.joinpath("venv").exists()


def test_role_argument_spec_rejects_a_bad_value(run_playbook: Callable[..., PlaybookResult], tmp_path: Path) -> None:
    result = run_playbook(
        PLAY,
        extra_vars={"kmip_prereqs_venv_path": str(tmp_path / "venv"), "kmip_prereqs_install_os_packages": "maybe"},
    )
    assert result.rc != 0
    assert "kmip_prereqs_install_os_packages" in result.explain()
    assert not (tmp_path / "venv").exists()
