# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the collection tarball, install it with ansible-galaxy, render every module's docs.

What users get from ``ansible-galaxy collection install`` must be complete (every module and
role documents itself) and clean (no test emulator, virtualenv, build or cache directories).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from kmiplab.playbook import REPO_ROOT, VENV_BIN

MODULES = sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
ROLES = sorted(p.parent.parent.name for p in (REPO_ROOT / "roles").glob("*/meta/argument_specs.yml"))
#: path prefixes that must never ship
FORBIDDEN_PREFIXES = (
    "tests/psmdb_emulator",
    ".venv",
    ".build",
    ".cache",
    ".git/",
    "bench/results",
    "tests/output",
)


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(tarball, collections path it was installed into, env pointing ansible-* at it)."""
    work = tmp_path_factory.mktemp("build-install")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(work / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
    }
    (work / "ansible.cfg").write_text("[defaults]\n")
    dist = work / "dist"
    built = _run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(REPO_ROOT)],
        env,
        work,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    tarballs = list(dist.glob("kmipops-psmdb-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    installed_ = _run(
        [
            str(VENV_BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--no-deps",
            "-p",
            str(work / "collections"),
            str(tarballs[0]),
        ],
        env,
        work,
    )
    assert installed_.returncode == 0, installed_.stdout + installed_.stderr
    return tarballs[0], work / "collections", env


def test_tarball_ships_no_test_emulator_venv_build_or_cache(installed: tuple[Path, Path, dict[str, str]]) -> None:
    tarball = installed[0]
    with tarfile.open(tarball) as archive:
        names = [name.removeprefix("./") for name in archive.getnames()]
    assert "MANIFEST.json" in names and "FILES.json" in names
    shipped_forbidden = [n for n in names if n.startswith(FORBIDDEN_PREFIXES) or "/__pycache__" in f"/{n}"]
    assert shipped_forbidden == []
    for module in MODULES:
        assert f"plugins/modules/{module}.py" in names
    assert "roles/kmip_prereqs/files/requirements.txt" in names


def test_installed_collection_is_the_built_one(installed: tuple[Path, Path, dict[str, str]]) -> None:
    _tarball, collections, _env = installed
    root = collections / "ansible_collections" / "kmipops" / "psmdb"
    assert not root.is_symlink()
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["namespace"] == "kmipops"
    assert manifest["collection_info"]["name"] == "psmdb"
    assert not (root / "tests" / "psmdb_emulator").exists()


@pytest.mark.skipif(not MODULES, reason="no modules in plugins/modules yet")
def test_every_module_documents_itself_from_the_installed_collection(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    _tarball, _collections, env = installed
    names = [f"kmipops.psmdb.{module}" for module in MODULES]
    as_json = _run([str(VENV_BIN / "ansible-doc"), "-t", "module", "--json", *names], env, tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    docs = json.loads(as_json.stdout)
    for name in names:
        assert name in docs, f"{name} has no documentation"
        doc = docs[name]["doc"]
        assert doc.get("short_description"), name
        assert docs[name].get("examples"), f"{name} has no EXAMPLES"
        assert docs[name].get("return") is not None, f"{name} has no RETURN"
    rendered = _run([str(VENV_BIN / "ansible-doc"), "-t", "module", *names], env, tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert "ERROR" not in rendered.stderr
    for name in names:
        assert name in rendered.stdout


@pytest.mark.parametrize("role", ROLES or [pytest.param(None, marks=pytest.mark.skip(reason="no role documents args"))])
def test_every_role_documents_its_arguments(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path, role: str
) -> None:
    _tarball, _collections, env = installed
    rendered = _run([str(VENV_BIN / "ansible-doc"), "-t", "role", f"kmipops.psmdb.{role}"], env, tmp_path)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert f"kmipops.psmdb.{role}" in rendered.stdout
    if role == "kmip_prereqs":
        assert "kmip_prereqs_venv_path" in rendered.stdout
