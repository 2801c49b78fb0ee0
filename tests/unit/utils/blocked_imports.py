# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module in a fresh interpreter in which some libraries cannot be imported.

That is a managed host without them: the import fails for real, when the module and its
module_utils are first imported, exactly as it would under AnsiballZ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

_SCRIPT = """
import importlib, importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"No module named {name!r} (not installed on this host)")
        return None

sys.meta_path.insert(0, Blocked())
from ansible.module_utils.testing import patch_module_args
module = importlib.import_module("ansible_collections.kmipops.psmdb.plugins.modules." + sys.argv[2])
with patch_module_args(json.loads(sys.argv[3])):
    try:
        module.main()
    except SystemExit:
        pass
"""


def run_module_without(libraries: list[str], module: str, args: dict[str, Any]) -> dict[str, Any]:
    """The JSON result of ``module`` run with ``args`` while ``libraries`` (top-level names) are missing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(libraries), module, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.stdout, f"no module output; stderr: {done.stderr[-2000:]}"
    return json.loads(done.stdout)
