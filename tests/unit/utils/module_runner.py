# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's ``main()`` in-process, as Ansible would, and return its JSON result."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(
    module: ModuleType,
    args: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    *,
    check: bool = False,
    diff: bool = False,
) -> dict[str, Any]:
    """``exit_json``/``fail_json`` output of ``module.main()`` with ``args`` (check/diff mode as asked)."""
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)
