"""Install the collections of tests/requirements.yml from the `ansible` wheel on PyPI.

Usage: install_test_collections.py DEST  (DEST/ansible_collections/<ns>/<name> is created)

Only the listed collections are extracted, which takes seconds, where `pip install ansible`
unpacks every bundled collection. The wheel version is pinned so the tests see the same
collection versions on every machine; pip's cache makes the download a one-time cost.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

import yaml

ANSIBLE_WHEEL = "ansible==12.3.0"
HERE = pathlib.Path(__file__).resolve().parent


def wanted_collections() -> list[str]:
    data = yaml.safe_load((HERE / "requirements.yml").read_text(encoding="utf-8"))
    return [entry["name"] for entry in data["collections"]]


def main(dest: pathlib.Path) -> int:
    names = wanted_collections()
    stamp = dest / f".installed-{ANSIBLE_WHEEL.replace('==', '-')}-{'-'.join(sorted(names))}"
    if stamp.exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "-q",
                "--no-deps",
                "-d",
                tmp,
                ANSIBLE_WHEEL,
            ],
            check=True,
        )
        wheel = next(pathlib.Path(tmp).glob("ansible-*.whl"))
        prefixes = tuple("ansible_collections/{}/{}/".format(*name.split(".")) for name in names)
        root = dest / "ansible_collections"
        for name in names:
            shutil.rmtree(root.joinpath(*name.split(".")), ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(prefixes)]
            archive.extractall(dest, members)
    for old in dest.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    print(f"installed {', '.join(names)} from {ANSIBLE_WHEEL} into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
