# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_common.module: every module turns a missing library and a typed error into a task failure the same way."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from unit.utils.blocked_imports import run_module_without

KMIP_ARGS: dict[str, Any] = {"server_name": ["127.0.50.1"], "client_certificate_file": "/nonexistent/c.pem"}

CASES = [
    ("mongod_member_info", ["pymongo", "bson"], {}, "pymongo"),
    ("mongod_member_stepdown", ["pymongo", "bson"], {}, "pymongo"),
    ("kmip_server_info", ["kmip"], KMIP_ARGS, "pykmip"),
    ("kmip_key", ["kmip"], {**KMIP_ARGS, "name": "k"}, "pykmip"),
    ("kmip_key_info", ["kmip"], {**KMIP_ARGS, "names": ["k"]}, "pykmip"),
    ("kmip_server_info", ["ruamel"], {"mongod_config": "{conf}"}, "ruamel.yaml"),
    ("mongod_kmip_config", ["ruamel"], {**KMIP_ARGS, "path": "{conf}"}, "ruamel.yaml"),
    ("mongod_kmip_config", ["bson", "pymongo"], {**KMIP_ARGS, "path": "{conf}"}, "pymongo"),
    ("mongod_kmip_config", ["cryptography"], {**KMIP_ARGS, "path": "{conf}"}, "cryptography"),
]


@pytest.mark.parametrize("module, blocked, args, library", CASES, ids=[f"{c[0]}-without-{c[1][0]}" for c in CASES])
def test_a_missing_library_fails_the_task_with_ansibles_words_and_a_kind(
    tmp_path: Path, module: str, blocked: list[str], args: dict[str, Any], library: str
) -> None:
    conf = tmp_path / "mongod.conf"
    conf.write_text("storage:\n  dbPath: /nonexistent/db\n")
    args = {key: (str(conf) if value == "{conf}" else value) for key, value in args.items()}
    result = run_module_without(blocked, module, args)
    assert result.get("failed") is True, result
    assert result["msg"].startswith(f"Failed to import the required Python library ({library})"), result["msg"]
    assert "kmipops.psmdb.kmip_prereqs" in result["msg"]
    assert result["error_kind"] == "missing_dependency"


MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[5] / "plugins" / "modules").glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_every_module_documents_error_kind(name: str) -> None:
    module = importlib.import_module(f"ansible_collections.kmipops.psmdb.plugins.modules.{name}")
    returns = yaml.safe_load(module.RETURN)
    assert "error_kind" in returns, f"{name}: RETURN does not document error_kind"
    assert "on failure" in returns["error_kind"]["returned"]


def test_an_unexpected_exception_is_an_internal_error_without_its_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ansible.module_utils import basic

    from ansible_collections.kmipops.psmdb.plugins.modules import mongod_member_stepdown
    from unit.utils.module_runner import run_module

    def explode(module: Any) -> dict[str, Any]:
        raise ValueError("cannot parse 'clientCertificatePassword: Leaked-S3cret'")

    monkeypatch.setattr(mongod_member_stepdown, "run", explode)
    # as with -vvv: the module returns its traceback
    monkeypatch.setattr(basic._traceback, "is_traceback_enabled", lambda _event: True)
    result = run_module(mongod_member_stepdown, {"login_host": "127.0.50.250", "login_port": 1}, capsys)
    assert result["failed"] is True and result["error_kind"] == "internal_error"
    assert "ValueError" in result["msg"] and "test_module.py" in result["msg"]
    assert "Leaked-S3cret" not in repr(result)
    # the stack (code locations only) is there for -vvv
    assert "Traceback" in result["exception"] and "explode" in result["exception"]
