# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_defaults with `omit`, as the roles use them, through ansible-playbook.

The test runs files/module_defaults_omit.yml with the venv's ansible-core. To check another
ansible-core (the oldest the collection claims, 2.17), run this file with its ansible-playbook:

    PYTHONPATH=.build/collections:tests .venv/bin/python tests/integration/test_module_defaults.py \\
        /tmp/core217/bin/ansible-playbook
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unit.utils.scripted_mongod import hello, scripted_member, serve, status

PLAYBOOK = Path(__file__).resolve().parent / "files" / "module_defaults_omit.yml"
MEMBER_OCTET = 61  # of the integration tests' /24 (conftest.py: .20-.99 are free for tests)


def healthy_set(member: Any) -> None:
    serve(member, hello(False), status([("PRIMARY", 1, 0), ("SECONDARY", 1, 0), ("SECONDARY", 1, 0)], 2))


def test_omitted_module_defaults_stay_unset(run_playbook: Callable[..., Any], kmiplab_net: str, tmp_path: Path) -> None:
    host = f"{kmiplab_net}.{MEMBER_OCTET}"
    with scripted_member(host) as member:
        healthy_set(member)
        result = run_playbook(
            PLAYBOOK, extra_vars={"work_dir": str(tmp_path), "member_host": host, "member_port": member.port}
        )
    assert result.rc == 0, result.explain()
    assert not result.failed_tasks()
    assert result.task("Only the options that were set reach the module").status == "ok"


def main(ansible_playbook: str) -> int:
    """Run the playbook with another ansible-playbook (and this venv's python on the host side)."""
    host = f"{os.environ.get('KMIPLAB_NET', '127.0.20')}.{MEMBER_OCTET}"
    collections = Path(__file__).resolve().parents[2] / ".build" / "collections"
    with scripted_member(host) as member, tempfile.TemporaryDirectory(prefix="kmipops-omit-") as work:
        healthy_set(member)
        (Path(work) / "ansible.cfg").write_text("[defaults]\n")
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(Path(work) / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        }
        command = [ansible_playbook, "-i", "localhost,", "-c", "local", str(PLAYBOOK)]
        command += ["-e", f"ansible_python_interpreter={sys.executable}", "-e", f"work_dir={work}"]
        command += ["-e", f"member_host={host}", "-e", f"member_port={member.port}"]
        subprocess.run([ansible_playbook, "--version"], env=env, check=False)
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
