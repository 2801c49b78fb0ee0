"""mongod options: names, types, defaults, validation, config file vs command line (psmdb-kmip.md s.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from psmdb_emulator import yamlconf
from psmdb_emulator.options import (
    HelpRequested,
    Options,
    OptionsError,
    VersionRequested,
    censor_argv,
    parse_args,
)

KMIP_BASE = [
    "--enableEncryption",
    "--kmipServerName",
    "kmip1.test,kmip2.test",
    "--kmipClientCertificateFile",
    "/etc/mongod/kmip-client.pem",
]


def parse_config(tmp_path: Path, text: str, *args: str) -> Options:
    config = tmp_path / "mongod.conf"
    config.write_text(text)
    return parse_args(["--config", str(config), *args])


def config_refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(OptionsError) as error:
        parse_config(tmp_path, text)
    return error.value.message


def refused(*args: str) -> str:
    with pytest.raises(OptionsError) as error:
        parse_args(list(args))
    return error.value.message


def test_kmip_defaults_are_psmdb_defaults() -> None:
    kmip = parse_args(KMIP_BASE).security.kmip
    assert kmip.port == 5696
    assert kmip.connect_retries == 0
    assert kmip.connect_timeout_ms == 5000
    assert kmip.activate_keys is True
    assert kmip.activate_keys_explicit is False
    assert kmip.key_state_polling_seconds == 900
    assert kmip.rotate_master_key is False
    assert kmip.key_identifier is None
    assert parse_args(KMIP_BASE).security.encryption_cipher_mode == "AES256-CBC"


def test_every_kmip_flag_maps_to_its_security_kmip_key() -> None:
    options = parse_args(
        [
            *KMIP_BASE,
            "--kmipPort",
            "15696",
            "--kmipServerCAFile",
            "/ca.pem",
            "--kmipClientCertificatePassword",
            "pw",
            "--kmipConnectRetries",
            "3",
            "--kmipConnectTimeoutMS",
            "1000",
            "--kmipKeyIdentifier",
            "42",
            "--kmipRotateMasterKey",
            "--kmipActivateKeys",
            "false",
            "--kmipKeyStatePollingSeconds",
            "-1",
            "--encryptionCipherMode",
            "AES256-GCM",
        ]
    )
    assert options.parsed["security"]["kmip"] == {
        "serverName": "kmip1.test,kmip2.test",
        "port": 15696,
        "serverCAFile": "/ca.pem",
        "clientCertificateFile": "/etc/mongod/kmip-client.pem",
        "clientCertificatePassword": "pw",
        "connectRetries": 3,
        "connectTimeoutMS": 1000,
        "keyIdentifier": "42",
        "rotateMasterKey": True,
        "activateKeys": False,
        "keyStatePollingSeconds": -1,
    }
    kmip = options.security.kmip
    assert kmip.server_name == ["kmip1.test", "kmip2.test"]
    assert (kmip.activate_keys, kmip.activate_keys_explicit) == (False, True)
    assert options.security.encryption_cipher_mode == "AES256-GCM"


def test_server_name_is_split_on_commas_without_trimming() -> None:
    options = parse_args(["--enableEncryption", "--kmipServerName", "a, b", "--kmipClientCertificateFile", "c"])
    assert options.security.kmip.server_name == ["a", " b"]


def test_yaml_config_with_nested_and_dotted_keys(tmp_path: Path) -> None:
    options = parse_config(
        tmp_path,
        """# mongod.conf
storage:
  dbPath: /var/lib/mongodb
systemLog:
  destination: file
  path: /var/log/mongodb/mongod.log
  logAppend: true
net:
  port: 27018
  bindIp: 127.0.0.1,127.0.30.1
  tls:
    mode: requireTLS
    certificateKeyFile: /etc/ssl/mongod.pem
    CAFile: /etc/ssl/ca.pem
replication:
  replSetName: rs0
security:
  authorization: enabled
  enableEncryption: true
  kmip:
    serverName: "kmip1.test,kmip2.test"
    clientCertificateFile: '/etc/mongod/kmip client.pem'
    activateKeys: true
security.kmip.keyStatePollingSeconds: 30
""",
    )
    assert options.storage.db_path == "/var/lib/mongodb"
    assert options.system_log.path == "/var/log/mongodb/mongod.log"
    assert options.system_log.log_append is True
    assert options.net.port == 27018
    assert options.net.bind_ip == ["127.0.0.1", "127.0.30.1"]
    assert options.net.tls.mode == "requireTLS"
    assert options.net.tls.certificate_key_file == "/etc/ssl/mongod.pem"
    assert options.net.tls.ca_file == "/etc/ssl/ca.pem"
    assert options.replication.repl_set_name == "rs0"
    assert options.security.authorization_enabled
    assert options.security.kmip.client_certificate_file == "/etc/mongod/kmip client.pem"
    assert options.security.kmip.key_state_polling_seconds == 30
    assert options.security.kmip.activate_keys_explicit
    assert options.parsed["config"] == str(tmp_path / "mongod.conf")


def test_command_line_overrides_config_file(tmp_path: Path) -> None:
    options = parse_config(
        tmp_path,
        "net:\n  port: 27018\nstorage:\n  dbPath: /from/file\n",
        "--port",
        "27019",
    )
    assert options.net.port == 27019
    assert options.storage.db_path == "/from/file"


def test_unknown_command_line_option_is_refused() -> None:
    assert (
        refused("--kmipUseLegacyProtocol")
        == "Error parsing command line: unrecognised option '--kmipUseLegacyProtocol'"
    )


def test_unknown_config_option_is_refused_with_its_full_name(tmp_path: Path) -> None:
    assert (
        config_refused(tmp_path, "security:\n  kmip:\n    useLegacyProtocol: true\n")
        == "Unrecognized option: security.kmip.useLegacyProtocol"
    )
    assert (
        config_refused(tmp_path, "security:\n  kmip:\n    clientCertificateSelector: subject=x\n")
        == "Unrecognized option: security.kmip.clientCertificateSelector"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kmipConnectTimeoutMS", "999"], "connectTimeoutMS must be greater than or equal to 1000"),
        (["--kmipConnectRetries", "-1"], "connectRetries must be greater than or equal to 0"),
        (["--kmipPort", "65536"], "security.kmip.port must be between 0 and 65535"),
        (["--kmipPort", "x"], 'Error parsing option "security.kmip.port" as int'),
        (["--encryptionCipherMode", "AES256-CTR"], "encryptionCipherMode must be one of AES256-CBC, AES256-GCM"),
    ],
)
def test_kmip_value_validation(args: list[str], message: str) -> None:
    assert message in refused(*KMIP_BASE, *args)


def test_kmip_requires_enable_encryption() -> None:
    assert refused("--kmipServerName", "k", "--kmipClientCertificateFile", "c") == (
        "BadValue: security.enableEncryption is required when security.kmip.serverName is specified"
    )


def test_kmip_requires_client_certificate_file() -> None:
    assert refused("--enableEncryption", "--kmipServerName", "k") == (
        "BadValue: security.kmip.clientCertificateFile is required when security.kmip.serverName is specified"
    )


def test_client_certificate_password_requires_the_file() -> None:
    assert "security.kmip.clientCertificateFile is required" in refused(
        "--enableEncryption", "--encryptionKeyFile", "/k", "--kmipClientCertificatePassword", "pw"
    )


def test_kmip_conflicts_with_key_file_and_vault() -> None:
    assert refused(*KMIP_BASE, "--encryptionKeyFile", "/k") == (
        "BadValue: security.encryptionKeyFile is not allowed when security.kmip.serverName is specified"
    )
    assert refused(*KMIP_BASE, "--vaultServerName", "vault") == (
        "BadValue: security.vault.serverName is not allowed when security.kmip.serverName is specified"
    )


def test_cipher_mode_requires_enable_encryption() -> None:
    assert "security.enableEncryption is required" in refused("--encryptionCipherMode", "AES256-GCM")


def test_net_port_range_and_tls_mode() -> None:
    assert "net.port must be between 0 and 65535" in refused("--port", "70000")
    assert "unsupported value for tlsMode" in refused("--tlsMode", "sometimes")
    assert "need tlsCertificateKeyFile" in refused("--tlsMode", "requireTLS")


def test_fork_needs_a_log_destination() -> None:
    assert refused("--fork") == "BadValue: --fork has to be used with --logpath or --syslog"
    assert parse_args(["--fork", "--logpath", "/tmp/x.log"]).process_management.fork


def test_i10_7_censoring_is_mongods_the_kmip_password_is_shown() -> None:
    # only redact:true options are censored (net.tls.*Password); PSMDB's KMIP password option
    # has no redact flag, so getCmdLineOpts and log 21951 show it (dummy passwords only here)
    argv = [
        *KMIP_BASE,
        "--kmipClientCertificatePassword",
        "dummy-kmip",
        "--tlsMode=requireTLS",
        "--tlsCertificateKeyFile=/pem",
        "--tlsCertificateKeyFilePassword=dummy-tls",
    ]
    options = parse_args(argv)
    assert options.security.kmip.client_certificate_password == "dummy-kmip"
    assert options.censored_parsed()["security"]["kmip"]["clientCertificatePassword"] == "dummy-kmip"
    assert options.censored_parsed()["net"]["tls"]["certificateKeyFilePassword"] == "<password>"
    assert censor_argv(["mongod", *argv])[-4:] == [
        "dummy-kmip",
        "--tlsMode=requireTLS",
        "--tlsCertificateKeyFile=/pem",
        "--tlsCertificateKeyFilePassword=<password>",
    ]
    assert censor_argv(["--tlsCertificateKeyFilePassword", "x", "--port", "1"]) == [
        "--tlsCertificateKeyFilePassword",
        "<password>",
        "--port",
        "1",
    ]
    assert "dummy" not in repr(options)


def test_auth_flag_and_set_parameter() -> None:
    options = parse_args(["--auth", "--setParameter", "enableLocalhostAuthBypass=false"])
    assert options.security.authorization_enabled
    assert options.set_parameters == {"enableLocalhostAuthBypass": "false"}


def test_version_and_help_are_requests() -> None:
    with pytest.raises(VersionRequested):
        parse_args(["--version"])
    with pytest.raises(HelpRequested):
        parse_args(["--help"])


def test_yaml_reader_keeps_scalars_as_strings_and_refuses_what_it_cannot_read() -> None:
    assert yamlconf.parse('a:\n  b: \'x # y\'\n  c: "q\\""  # c\n  d: [1, 2]\n  e: {}\n') == {
        "a": {"b": "x # y", "c": 'q"', "d": ["1", "2"], "e": {}}
    }
    assert yamlconf.parse("---\nlist:\n- a\n- b\n") == {"list": ["a", "b"]}
    for bad in ("a:\n\tb: 1\n", "a: 1\na: 2\n", "a: |\n  x\n", "a:\n  b: 1\n c: 2\n"):
        with pytest.raises(yamlconf.YamlError):
            yamlconf.parse(bad)


def test_i12_5c_system_log_path_needs_destination_file_as_mongod_checks_it(tmp_path: Path) -> None:
    # server_options_helpers.cpp storeBaseOptions (7.0): a YAML systemLog.path without destination is refused
    only_file = "BadValue: Can only use systemLog.path if systemLog.destination is to a file"
    assert config_refused(tmp_path, "systemLog:\n  path: /var/log/mongodb/mongod.log\n  logAppend: true\n") == only_file
    assert config_refused(tmp_path, "systemLog:\n  destination: syslog\n  path: /l\n") == only_file
    assert config_refused(tmp_path, "systemLog:\n  destination: console\n") == (
        "BadValue: Bad value for systemLog.destination: console.  Supported targets are: (syslog|file)"
    )
    assert refused("--logpath", "") == "BadValue: logpath cannot be empty if supplied"
    # --logpath on the command line is canonicalized to destination "file" + path, also over a YAML path
    options = parse_config(tmp_path, "systemLog:\n  path: /from/yaml.log\n", "--logpath", "/from/cli.log")
    assert options.parsed["systemLog"] == {"destination": "file", "path": "/from/cli.log"}
    assert options.system_log.destination == "file"
    # logRotate: reopen needs logAppend
    assert refused("--logpath", "/l", "--logRotate", "reopen") == (
        "BadValue: logAppend must equal true if logRotate is set to reopen"
    )
    assert refused("--logpath", "/l", "--logRotate", "sideways") == "BadValue: unsupported value for logRotate sideways"
    assert parse_args(["--logpath", "/l", "--logappend", "--logRotate", "reopen"]).system_log.log_append


def test_i12_3_oplog_size_must_be_positive() -> None:
    # mongod_options.cpp: "bad --oplogSize, arg must be greater than 0,found: " (sic, no space)
    assert refused("--replSet", "rs", "--oplogSize", "0") == (
        "BadValue: bad --oplogSize, arg must be greater than 0,found: 0"
    )
    assert parse_args(["--replSet", "rs", "--oplogSize", "1"]).replication.oplog_size_mb == 1
