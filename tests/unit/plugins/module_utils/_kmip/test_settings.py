# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_kmip.settings: one model of mongod's security.kmip, from module options or from mongod.conf."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import (
    KMIP_CONNECTION_ARGSPEC,
    KmipSettings,
    split_server_name,
)

CONNECTABLE: dict[str, Any] = {"server_name": ["kmip1", "kmip2"], "client_certificate_file": "/etc/c.pem"}


def test_from_params_keeps_only_what_is_set() -> None:
    settings = KmipSettings.from_params({**CONNECTABLE, "port": None, "fail_on_problems": True, "kmip_version": "1.0"})
    assert settings.server_name == ["kmip1", "kmip2"] and settings.client_certificate_file == "/etc/c.pem"
    assert settings.port is None and settings.connect_timeout_ms is None


def test_mongod_defaults_apply_only_when_not_set() -> None:
    unset = KmipSettings()
    assert (unset.effective_port, unset.effective_connect_retries) == (5696, 0)
    assert unset.effective_connect_timeout_ms == 5000
    chosen = KmipSettings(port=5697, connect_retries=2, connect_timeout_ms=1000)
    assert (chosen.effective_port, chosen.effective_connect_retries) == (5697, 2)
    assert chosen.effective_connect_timeout_ms == 1000


def test_from_mongod_security_reads_camel_case_and_splits_server_name_like_psmdb() -> None:
    security = {
        "authorization": "enabled",
        "kmip": {
            "serverName": "kmip1,kmip2",
            "port": 5697,
            "serverCAFile": "/etc/ca.pem",
            "clientCertificateFile": "/etc/c.pem",
            "clientCertificatePassword": "s3cret",
            "keyIdentifier": "42",
            "connectTimeoutMS": 3000,
            "rotateMasterKey": True,  # not a setting of this model
        },
    }
    settings = KmipSettings.from_mongod_security(security)
    assert settings.server_name == ["kmip1", "kmip2"] and settings.port == 5697
    assert settings.server_ca_file == "/etc/ca.pem" and settings.key_identifier == "42"
    assert settings.connect_timeout_ms == 3000 and settings.client_certificate_password == "s3cret"
    assert "s3cret" not in repr(settings)
    # PSMDB does not trim: the space stays, and validation names it
    spaced = KmipSettings.from_mongod_security({"kmip": {"serverName": "kmip1, kmip2", "clientCertificateFile": "/c"}})
    assert spaced.server_name == ["kmip1", " kmip2"]
    with pytest.raises(InvalidOptionError, match="whitespace"):
        spaced.validate()


@pytest.mark.parametrize("security", [None, {}, {"kmip": None}, {"authorization": "enabled"}])
def test_no_kmip_section_is_an_empty_model(security: Any) -> None:
    assert KmipSettings.from_mongod_security(security) == KmipSettings()


def test_a_kmip_section_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        KmipSettings.from_mongod_security({"kmip": "kmip1"})
    assert caught.value.option == "security.kmip"


def test_module_options_override_mongod_conf() -> None:
    conf = KmipSettings(server_name=["a"], port=5697, client_certificate_file="/conf.pem", key_identifier="7")
    merged = KmipSettings(port=5698, key_identifier="8").merged_over(conf)
    assert (merged.server_name, merged.port, merged.client_certificate_file, merged.key_identifier) == (
        ["a"],
        5698,
        "/conf.pem",
        "8",
    )
    assert conf.port == 5697, "the base is not modified"


def test_to_mongod_kmip_writes_only_what_is_set_in_psmdb_order() -> None:
    settings = KmipSettings(
        server_name=["kmip1", "kmip2"], client_certificate_file="/c.pem", connect_retries=0, activate_keys=False
    )
    assert settings.to_mongod_kmip() == {
        "serverName": "kmip1,kmip2",
        "clientCertificateFile": "/c.pem",
        "connectRetries": 0,
        "activateKeys": False,
    }


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"port": 65536}, "port", "allowed: 1 to 65535"),
    ({"port": True}, "port", "integer"),
    ({"connect_retries": -1}, "connect_retries", "allowed: 0 to 2147483647"),
    ({"connect_timeout_ms": 999}, "connect_timeout_ms", "allowed: 1000 to 2147483647"),
    ({"key_state_polling_seconds": "900"}, "key_state_polling_seconds", "integer"),
    ({"activate_keys": "yes"}, "activate_keys", "boolean"),
    ({"server_ca_file": " "}, "server_ca_file", "non-empty"),
    ({"key_identifier": ""}, "key_identifier", "non-empty"),
    ({"server_name": []}, "server_name", "non-empty list"),
    ({"server_name": ["kmip1", ""]}, "server_name", "entry 2 is empty"),
    ({"server_name": ["kmip1,kmip2"]}, "server_name", "comma"),
    ({"server_name": ["kmip 1"]}, "server_name", "whitespace"),
]


@pytest.mark.parametrize("change, option, reason", BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_what_mongod_would_refuse_is_refused_with_the_option_name(
    change: dict[str, Any], option: str, reason: str
) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        KmipSettings(**{**CONNECTABLE, **change}).validate()
    assert caught.value.option == option and reason in str(caught.value)


def test_a_password_needs_its_certificate_file() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        KmipSettings(client_certificate_password="p").validate(require_connection=False)
    assert caught.value.option == "client_certificate_password"
    assert "p" not in caught.value.reason.replace("password", "").replace("requires", "").split()


@pytest.mark.parametrize("missing", ["server_name", "client_certificate_file"])
def test_a_session_needs_servers_and_an_identity(missing: str) -> None:
    settings = KmipSettings(**{k: v for k, v in CONNECTABLE.items() if k != missing})
    settings.validate(require_connection=False)  # enough to render, not to connect
    with pytest.raises(InvalidOptionError) as caught:
        settings.validate()
    assert caught.value.option == missing and "is required" in str(caught.value)


def test_split_server_name_accepts_psmdb_string_and_yaml_list() -> None:
    assert split_server_name("a,b") == ["a", "b"]
    assert split_server_name(["a", "b"]) == ["a", "b"]
    with pytest.raises(InvalidOptionError, match="string or a list"):
        split_server_name(5696)


def test_the_connection_argspec_has_no_defaults() -> None:
    """A default would be written to mongod.conf and would hide mongod.conf values in kmip_server_info."""
    assert all("default" not in spec for spec in KMIP_CONNECTION_ARGSPEC.values())
    assert KMIP_CONNECTION_ARGSPEC["client_certificate_password"]["no_log"] is True


@pytest.mark.parametrize(
    "kmip, option, fragment",
    [
        ({"connectTimeoutMS": 2**31}, "connect_timeout_ms", "(allowed: 1000 to 2147483647"),
        ({"connectTimeoutMS": 10**13}, "connect_timeout_ms", "out of range"),
        ({"connectRetries": 2**31}, "connect_retries", "(allowed: 0 to 2147483647"),
        ({"port": 70000}, "port", "(allowed: 1 to 65535"),
        ({"keyStatePollingSeconds": 2**31}, "key_state_polling_seconds", "out of range"),
        ({"serverName": "https://kmip1"}, "server_name", "is a URL"),
        ({"serverName": "kmip1,"}, "server_name", "is empty"),
    ],
)
def test_mongod_conf_values_mongod_cannot_read_are_refused(kmip: dict, option: str, fragment: str) -> None:
    settings = KmipSettings.from_mongod_security({"kmip": {"serverName": "k1", "clientCertificateFile": "/c", **kmip}})
    with pytest.raises(InvalidOptionError) as caught:
        settings.validate()
    assert caught.value.option == option and fragment in str(caught.value)


def test_a_numeric_key_identifier_in_mongod_conf_is_its_text_as_mongod_reads_it() -> None:
    settings = KmipSettings.from_mongod_security(
        {"kmip": {"serverName": "k1", "clientCertificateFile": "/c", "keyIdentifier": 1}}
    )
    settings.validate()
    assert settings.key_identifier == "1"
