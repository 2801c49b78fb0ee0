# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kmip_security filter, and the property that it renders what mongod_kmip_config writes."""

from __future__ import annotations

import os
import pwd
import tempfile
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from ansible_collections.kmipops.psmdb.plugins.filter.kmip_security import FilterModule, kmip_security
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import render_security_yaml
from ansible_collections.kmipops.psmdb.plugins.modules import mongod_kmip_config
from unit.utils.module_runner import run_module

ME = pwd.getpwuid(os.getuid()).pw_name
PREFIX = "# mongod.conf\nstorage:\n  dbPath: {db}\nnet:\n  port: 27017\n"
BASES: list[dict[str, Any]] = [
    {},
    {"authorization": "enabled"},
    {"authorization": "enabled", "keyFile": "/etc/mongodb/keyfile", "clusterAuthMode": "keyFile"},
]

hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True) | st.builds(
    "127.0.50.{}".format, st.integers(1, 254)
)
paths = st.from_regex(r"/[a-z]{1,8}(/[a-z0-9._-]{1,8}){0,2}\.pem", fullmatch=True)
tricky_strings = st.sampled_from(["1", "007", "true", "null", "~", "1e3", "0x1F", "a: b", "#x", "- x", "'q'", '"d"'])
options = st.fixed_dictionaries(
    {"server_name": st.lists(hosts, min_size=1, max_size=3), "client_certificate_file": paths},
    optional={
        "port": st.integers(1, 65535),
        "server_ca_file": paths,
        "client_certificate_password": tricky_strings
        | st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=16),
        "key_identifier": tricky_strings | st.from_regex(r"[A-Za-z0-9-]{1,36}", fullmatch=True),
        "connect_retries": st.integers(0, 10),
        "connect_timeout_ms": st.integers(1000, 120000),
        "activate_keys": st.booleans(),
        "key_state_polling_seconds": st.integers(-5, 86400),
        "cipher_mode": st.sampled_from(["AES256-CBC", "AES256-GCM"]),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=options, base_index=st.integers(0, len(BASES) - 1))
def test_filter_renders_exactly_what_the_module_writes(
    opts: dict[str, Any], base_index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASES[base_index]
    expected = kmip_security(opts, security=base, output="yaml")
    with tempfile.TemporaryDirectory(prefix="kmipops-filter-") as tmp:
        conf = Path(tmp) / "mongod.conf"
        prefix = PREFIX.format(db=Path(tmp) / "db")
        conf.write_text(prefix + render_security_yaml(base))
        result = run_module(
            mongod_kmip_config, {**opts, "path": str(conf), "service_user": ME, "check_files": False}, capsys
        )
        assert not result.get("failed"), result.get("msg")
        written = conf.read_text()
    assert written.startswith(prefix)
    assert written[len(prefix) :] == expected

    mapping = kmip_security(opts, security=base)
    assert YAML(typ="safe").load(expected) == {"security": mapping}
    kmip = mapping["kmip"]
    assert kmip["serverName"].split(",") == opts["server_name"]
    if "key_identifier" in opts:
        assert kmip["keyIdentifier"] == opts["key_identifier"]  # stays a string even when it looks like 1 or true
    if "client_certificate_password" in opts:
        assert kmip["clientCertificatePassword"] == opts["client_certificate_password"]


def test_mapping_output_is_plain_data_in_mongod_order() -> None:
    result = kmip_security(
        {
            "server_name": "kmip1,kmip2",
            "client_certificate_file": "/c.pem",
            "port": "5697",
            "cipher_mode": "AES256-GCM",
        },
        security={"authorization": "enabled"},
    )
    assert result == {
        "authorization": "enabled",
        "enableEncryption": True,
        "encryptionCipherMode": "AES256-GCM",
        "kmip": {"serverName": "kmip1,kmip2", "port": 5697, "clientCertificateFile": "/c.pem"},
    }
    assert list(result) == ["authorization", "enableEncryption", "encryptionCipherMode", "kmip"]
    # exactly dict, not a ruamel CommentedMap subclass
    assert type(result) is dict and type(result["kmip"]) is dict  # pylint: disable=unidiomatic-typecheck


def test_yaml_output_and_indent() -> None:
    text = kmip_security({"server_name": ["k1"], "client_certificate_file": "/c.pem"}, output="yaml", indent=4)
    assert (
        text == "security:\n    enableEncryption: true\n    kmip:\n        serverName: k1\n"
        "        clientCertificateFile: /c.pem\n"
    )


@pytest.mark.parametrize(
    "opts, security, output, fragment",
    [
        (
            {"server_name": ["k1"], "client_certificate_file": "/c", "connect_timeout_ms": 10},
            None,
            "mapping",
            "connect_timeout_ms: 10 is out of range (allowed: 1000 to 2147483647",
        ),
        ({"server_name": ["k 1"], "client_certificate_file": "/c"}, None, "mapping", "server_name:"),
        ({"server_name": ["k1"]}, None, "mapping", "client_certificate_file: is required"),
        (
            {"server_name": ["k1"], "client_certificate_file": "/c", "cipher_mode": "AES"},
            None,
            "mapping",
            "cipher_mode",
        ),
        ({"server_name": ["k1"], "client_certificate_file": "/c", "prot": 1}, None, "mapping", "prot: unknown option"),
        (
            {"server_name": ["k1"], "client_certificate_file": "/c"},
            {"vault": {"serverName": "v"}},
            "mapping",
            "security.vault",
        ),
        ({"server_name": ["k1"], "client_certificate_file": "/c"}, None, "toml", "output must be one of"),
        ("server_name=k1", None, "mapping", "must be a dict"),
    ],
)
def test_bad_input_names_the_option(opts: Any, security: Any, output: str, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        kmip_security(opts, security=security, output=output)
    assert fragment in str(caught.value)


def test_password_is_not_echoed_in_errors() -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        kmip_security({"server_name": ["k1"], "client_certificate_password": "Sekr1t!"})
    assert "Sekr1t!" not in str(caught.value)


def test_registered_under_its_name() -> None:
    assert FilterModule().filters()["kmip_security"] is kmip_security


@pytest.mark.parametrize("indent", [0, -2, 11, 2**31, True, "2", 2.5, None])
def test_indent_out_of_range_names_the_option(indent: Any) -> None:
    opts = {"server_name": ["k1"], "client_certificate_file": "/c"}
    with pytest.raises(AnsibleFilterError, match="option indent: must be an integer from 1 to 10"):
        kmip_security(opts, output="yaml", indent=indent)


@pytest.mark.parametrize("indent", [1, 2, 4, 10])
def test_indent_in_range_renders(indent: int) -> None:
    text = kmip_security({"server_name": ["k1"], "client_certificate_file": "/c"}, output="yaml", indent=indent)
    assert text.startswith("security:\n" + " " * indent + "enableEncryption: true")
