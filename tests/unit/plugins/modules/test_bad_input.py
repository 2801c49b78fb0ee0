# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Malformed input, every module, in-process: one table of (module, option, bad value).

Each case must fail with a message naming the option, before any connection or change
(``error_kind`` ``invalid_option``, or Ansible's own argument-spec message), with no traceback
and no secret in the whole result. The same classes run through ansible-playbook in
tests/integration/test_bad_input_playbook.py.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.modules import (
    kmip_key,
    kmip_key_info,
    mongod_conversion_info,
    mongod_dbpath,
    mongod_encryption_info,
    mongod_kmip_config,
    mongod_member_info,
    mongod_member_stepdown,
    mongod_replset_info,
    mongod_rotate_master_key,
)
from unit.utils.bad_input import KMIP_MODULES, SECRET, bad_input_cases
from unit.utils.module_runner import run_module
from unit.utils.mongod_pki import Pki, make_pki
from unit.utils.scripted_mongod import free_port

#: every module on disk (a new one must join the table: test_the_table_covers_every_module)
MODULES: dict[str, ModuleType] = {
    path.stem: importlib.import_module(f"{kmip_key.__package__}.{path.stem}")
    for path in sorted(Path(kmip_key.__file__).parent.glob("*.py"))
    if path.stem != "__init__"
}


def cases() -> list[Any]:
    return [
        pytest.param(MODULES[name], option, value, id=f"{name}-{option}-{value!r}")
        for name, option, value in bad_input_cases()
    ]


class CaseTimeout(BaseException):
    """A case ran past its alarm."""


@pytest.fixture(autouse=True)
def bounded() -> Iterator[None]:
    """A case that would connect with a huge timeout must fail, not hang the suite."""

    def expire(_signum: int, _frame: Any) -> None:
        # not an Exception: retry loops that catch OSError/Exception must not swallow it
        raise CaseTimeout("the module did not fail in time: it did not validate before connecting")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(os.environ.get("KMIPOPS_BAD_INPUT_ALARM", "20")))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), password=SECRET)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "mongod.conf"
    path.write_text(f"storage:\n  dbPath: {tmp_path / 'db'}\nnet:\n  port: 27017\n")
    return path


def valid_args(module: ModuleType, pki: Pki, conf: Path) -> dict[str, Any]:
    """Arguments that pass validation; the servers they name do not exist (nothing is contacted)."""
    if module.__name__.rsplit(".", 1)[-1] in KMIP_MODULES or module is mongod_kmip_config:
        args: dict[str, Any] = {
            "server_name": ["127.0.50.250"],
            "port": free_port(),
            "server_ca_file": str(pki.ca_file),
            "client_certificate_file": str(pki.client_pem),
            "connect_timeout_ms": 1000,
        }
        if module is kmip_key:
            args["name"] = "bad-input"
        if module is kmip_key_info:
            args["names"] = ["bad-input"]
        if module is mongod_kmip_config:
            args.update(path=str(conf), service_user="root")
        return args
    if module is mongod_rotate_master_key:
        return {"config": str(conf), "binary": "/nonexistent/mongod", "new_key_identifier": "k1"}
    if module is mongod_dbpath:
        return {"state": "set_aside", "config": str(conf), "service_name": ""}
    args = {"login_host": "127.0.50.250", "login_port": free_port(), "timeout_ms": 500}
    if module in (mongod_encryption_info, mongod_conversion_info):
        args["config"] = str(conf)
    return args


@pytest.mark.parametrize("module, option, value", cases())
def test_bad_value_fails_naming_the_option(
    module: ModuleType, option: str, value: Any, pki: Pki, conf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = valid_args(module, pki, conf)
    args[option] = value
    if option == "client_certificate_password":
        args["client_certificate_file"] = str(pki.client_pem_encrypted)
    before = hashlib.sha256(conf.read_bytes()).hexdigest()
    result = run_module(module, args, capsys)
    text = json.dumps(result)
    assert result.get("failed") is True, text
    assert option in result["msg"], text
    # before anything is contacted or changed: ours, or Ansible's own argument-spec check
    assert result.get("error_kind") in ("invalid_option", None), text
    assert "Traceback" not in text and "internal error" not in text, text
    assert SECRET not in text
    assert hashlib.sha256(conf.read_bytes()).hexdigest() == before


def test_the_table_covers_every_module() -> None:
    """A new module under plugins/modules must join the table."""
    assert {name for name, _option, _value in bad_input_cases()} == set(MODULES)


def test_the_table_covers_every_module_option() -> None:
    """Every option of every module has a bad value in the table (booleans and choices too)."""
    covered: dict[ModuleType, set[str]] = {}
    for param in cases():
        module, option, _value = param.values
        covered.setdefault(module, set()).add(option)
    exempt = {"login_user"}  # covered: any user without a password
    for module, options in covered.items():
        spec = module_spec(module)
        missing = set(spec) - options - exempt
        assert not missing, f"{module.__name__}: no bad value for {sorted(missing)}"


def module_spec(module: ModuleType) -> dict[str, Any]:
    from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.member import DBPATH_ARGSPEC
    from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.preflight import PREFLIGHT_ARGSPEC
    from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.module import KmipModule, KmipSessionModule
    from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf_update import CONFIG_ARGSPEC
    from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule
    from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.info import REPLSET_INFO_ARGSPEC
    from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.info import INFO_ARGSPEC

    if module.__name__.rsplit(".", 1)[-1] in KMIP_MODULES:
        return {**KmipSessionModule.class_argument_spec(), **module.ARGUMENT_SPEC}
    if module is mongod_kmip_config:
        return {**KmipModule.class_argument_spec(), **CONFIG_ARGSPEC}
    if module is mongod_rotate_master_key:
        return mongod_rotate_master_key.RotateMasterKeyModule.class_argument_spec()
    if module is mongod_dbpath:
        return DBPATH_ARGSPEC
    own = {
        mongod_member_info: {"fail_on_unreachable": {}},
        mongod_member_stepdown: mongod_member_stepdown.ARGUMENT_SPEC,
        mongod_encryption_info: INFO_ARGSPEC,
        mongod_replset_info: REPLSET_INFO_ARGSPEC,
        mongod_conversion_info: PREFLIGHT_ARGSPEC,
    }[module]
    return {**MongodMemberModule.class_argument_spec(), **own}
