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
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.modules import (
    kmip_key,
    kmip_key_info,
    kmip_server_info,
    mongod_encryption_info,
    mongod_kmip_config,
    mongod_member_info,
    mongod_member_stepdown,
    mongod_rotate_master_key,
)
from unit.utils.module_runner import run_module
from unit.utils.mongod_pki import Pki, make_pki
from unit.utils.scripted_mongod import free_port

SECRET = "Dummy-S3cret-Pw"
KMIP_MODULES = (kmip_server_info, kmip_key, kmip_key_info)
MONGOD_MODULES = (mongod_member_info, mongod_member_stepdown, mongod_encryption_info)

#: (option, bad value): the KMIP connection options, for every module that takes them
KMIP_CASES: list[tuple[str, Any]] = [
    ("port", 0),
    ("port", -1),
    ("port", 70000),
    ("port", "https"),
    ("connect_timeout_ms", 999),
    ("connect_timeout_ms", -1),
    ("connect_timeout_ms", 2**31),
    ("connect_timeout_ms", 10**13),
    ("connect_retries", -1),
    ("connect_retries", 2**31),
    ("server_name", [""]),
    ("server_name", ["https://kmip.example.com"]),
    ("server_name", ["kmip one"]),
    ("server_name", ["kmip\x00x"]),
    ("server_name", ["kmip/x"]),
    ("server_name", ["admin@kmip"]),
    ("server_ca_file", "/etc/ca\x00.pem"),
    ("server_ca_file", "/etc/ca\x07.pem"),
    ("client_certificate_file", "/etc/c\x00.pem"),
    ("client_certificate_file", "/etc/c\n.pem"),
    ("client_certificate_password", SECRET + "\x00"),
    ("client_certificate_password", SECRET + "\x1b"),
]
SESSION_CASES: list[tuple[str, Any]] = [("kmip_version", "3.0"), ("kmip_version", "")]
#: per module, its own options
OWN_CASES: dict[ModuleType, list[tuple[str, Any]]] = {
    kmip_server_info: [
        ("mongod_config", "/etc/mongod\x00.conf"),
        ("key_identifier", "k\x00"),
        ("fail_on_problems", "maybe"),
    ],
    kmip_key: [
        ("name", "key\x00"),
        ("name", "key\x01"),
        ("key_identifier", "k\x00"),
        ("state", "gone"),
        ("force", "maybe"),
    ],
    kmip_key_info: [("key_identifiers", ["k\x00"]), ("names", ["n\x7f"])],
    mongod_kmip_config: [
        ("key_identifier", "k\x00"),
        ("key_identifier", "k\x1b[31m"),
        ("key_state_polling_seconds", 2**31),
        ("key_state_polling_seconds", -(2**31) - 1),
        ("cipher_mode", "AES"),
        ("activate_keys", "maybe"),
        ("path", "/etc/mongod\x00.conf"),
        ("mode", "0999"),
        ("owner", "mongod\x00"),
        ("group", "g\x01"),
        ("db_path", "/var/lib/mongo\x00"),
        ("service_user", "mongod\x00"),
        ("state", "enabled"),
        ("backup", "maybe"),
        ("check_files", "maybe"),
    ],
    mongod_member_stepdown: [
        ("step_down_secs", 0),
        ("step_down_secs", -10),
        ("step_down_secs", 2**31),
        ("secondary_catch_up_period_secs", -1),
        ("secondary_catch_up_period_secs", 2**31),
    ],
    mongod_encryption_info: [
        ("log_scan_bytes", 0),
        ("log_scan_bytes", -1),
        ("log_scan_bytes", 2**31),
        ("config", "/etc/mongod\x00.conf"),
        ("query_server", "maybe"),
        ("query_kmip", "maybe"),
    ],
    mongod_member_info: [("fail_on_unreachable", "maybe")],
}
#: (option, bad value): the mongod connection options, for every module that takes them
MONGOD_CASES: list[tuple[str, Any]] = [
    ("login_host", ""),
    ("login_host", " "),
    ("login_host", "db 1"),
    ("login_host", "mongodb://db1"),
    ("login_host", "db1\x00"),
    ("login_port", 0),
    ("login_port", -1),
    ("login_port", 70000),
    ("timeout_ms", 0),
    ("timeout_ms", -1),
    ("timeout_ms", 2**31),
    ("login_user", "admin"),  # without a password
    ("login_password", SECRET),  # without a user
    ("login_password", SECRET + "\x00"),
    ("login_database", ""),
    ("tls_ca_file", "/nonexistent/ca.pem"),
    ("tls_ca_file", ""),
    ("tls_certificate_key_file", "/nonexistent/client.pem"),
    ("tls_certificate_key_file_password", SECRET),  # without the key file
    ("tls", "maybe"),
    ("tls_allow_invalid_hostnames", "maybe"),
]
ROTATE_CASES: list[tuple[str, Any]] = [
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", 10**13),
    ("config", "/etc/mongod\x00.conf"),
    ("binary", "/usr/bin/mongod\x07"),
    ("service_user", "mongod\x00"),
    ("service_name", "mongod\n.service"),
    ("environment_file", "/etc/default/mongod\x00"),
    ("new_key_identifier", "k\x00"),
    ("current_key_identifier", "k\x1b"),
    ("remove_leftover_rotation_dir", "maybe"),
]


def cases() -> list[Any]:
    table: list[Any] = []
    for module in KMIP_MODULES:
        for option, value in [*KMIP_CASES, *SESSION_CASES, *OWN_CASES.get(module, [])]:
            table.append(
                pytest.param(module, option, value, id=f"{module.__name__.rsplit('.', 1)[-1]}-{option}-{value!r}")
            )
    for option, value in [*KMIP_CASES, *OWN_CASES[mongod_kmip_config]]:
        table.append(pytest.param(mongod_kmip_config, option, value, id=f"mongod_kmip_config-{option}-{value!r}"))
    for module in MONGOD_MODULES:
        for option, value in [*MONGOD_CASES, *OWN_CASES.get(module, [])]:
            table.append(
                pytest.param(module, option, value, id=f"{module.__name__.rsplit('.', 1)[-1]}-{option}-{value!r}")
            )
    for option, value in ROTATE_CASES:
        table.append(
            pytest.param(mongod_rotate_master_key, option, value, id=f"mongod_rotate_master_key-{option}-{value!r}")
        )
    return table


@pytest.fixture(autouse=True)
def bounded() -> Iterator[None]:
    """A case that would connect with a huge timeout must fail, not hang the suite."""

    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError("the module did not fail within 20 s: it did not validate before connecting")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
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
    if module in KMIP_MODULES or module is mongod_kmip_config:
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
    args = {"login_host": "127.0.50.250", "login_port": free_port(), "timeout_ms": 500}
    if module is mongod_encryption_info:
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
    from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.module import KmipModule, KmipSessionModule
    from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf_update import CONFIG_ARGSPEC
    from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule
    from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.info import INFO_ARGSPEC

    if module in KMIP_MODULES:
        return {**KmipSessionModule.class_argument_spec(), **module.ARGUMENT_SPEC}
    if module is mongod_kmip_config:
        return {**KmipModule.class_argument_spec(), **CONFIG_ARGSPEC}
    if module is mongod_rotate_master_key:
        return mongod_rotate_master_key.RotateMasterKeyModule.class_argument_spec()
    own = {
        mongod_member_info: {"fail_on_unreachable": {}},
        mongod_member_stepdown: mongod_member_stepdown.ARGUMENT_SPEC,
        mongod_encryption_info: INFO_ARGSPEC,
    }[module]
    return {**MongodMemberModule.class_argument_spec(), **own}
