"""mongod's command line and YAML config, with PSMDB 7.0's names, types, defaults and checks.

Parsing follows mongod: the config file (``--config``/``-f``) is read first, command-line
options override it, unknown options end the process with exit code 2 (``ExitCode::badOptions``)
and a message on stderr. The result is the typed ``Options`` dataclass that the rest of the
emulator (and the network server) uses; ``Options.parsed`` is what ``getCmdLineOpts`` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from psmdb_emulator import server_parameters, yamlconf

VERSION = "7.0.14-8"
EXIT_BAD_OPTIONS = 2

DEFAULT_PORT = 27017
DEFAULT_DB_PATH = "/data/db"
DEFAULT_KMIP_PORT = 5696
DEFAULT_KMIP_CONNECT_RETRIES = 0
DEFAULT_KMIP_CONNECT_TIMEOUT_MS = 5000
MIN_KMIP_CONNECT_TIMEOUT_MS = 1000
DEFAULT_KMIP_KEY_STATE_POLLING_SECONDS = 900
CIPHER_MODES = ("AES256-CBC", "AES256-GCM")
TLS_MODES = ("disabled", "allowTLS", "preferTLS", "requireTLS")
# Options mongod censors in getCmdLineOpts and log 21951: only those declared ``redact: true`` in
# their IDL (MongoDB's cmdline_utils/censor_cmdline.cpp). PSMDB's mongod_options_encryption.idl
# does NOT mark security.kmip.clientCertificatePassword, so mongod shows it: so does the emulator.
REDACTED_KEYS = frozenset({"net.tls.certificateKeyFilePassword", "net.tls.clusterPassword"})
REDACTED_FLAGS = frozenset({"tlsCertificateKeyFilePassword", "tlsClusterPassword"})
CENSORED = "<password>"


class OptionsError(Exception):
    """Options mongod would refuse; ``str()`` is the text mongod prints on stderr."""

    def __init__(self, message: str, *, hint: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint  # mongod adds "try 'mongod --help' for more information"


class HelpRequested(Exception):
    pass


class VersionRequested(Exception):
    pass


# -- option table -----------------------------------------------------------------------------

SWITCH = "switch"  # CLI flag without a value; YAML bool
BOOL = "bool"  # CLI flag with an optional true/false value; YAML bool
INT = "int"
DOUBLE = "double"
STRING = "string"


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    key: str
    kind: str
    cli: tuple[str, ...] = ()
    # value stored when a CLI flag is given without a value (e.g. --auth -> "enabled")
    implicit: Any = None


_SPECS: tuple[OptionSpec, ...] = (
    # net
    OptionSpec("net.port", INT, ("port",)),
    OptionSpec("net.bindIp", STRING, ("bind_ip",)),
    OptionSpec("net.bindIpAll", SWITCH, ("bind_ip_all",)),
    OptionSpec("net.ipv6", SWITCH, ("ipv6",)),
    OptionSpec("net.maxIncomingConnections", INT, ("maxConns",)),
    OptionSpec("net.unixDomainSocket.enabled", BOOL, ("nounixsocket",)),
    OptionSpec("net.unixDomainSocket.pathPrefix", STRING, ("unixSocketPrefix",)),
    OptionSpec("net.unixDomainSocket.filePermissions", INT, ("filePermissions",)),
    OptionSpec("net.tls.mode", STRING, ("tlsMode",)),
    OptionSpec("net.tls.certificateKeyFile", STRING, ("tlsCertificateKeyFile",)),
    OptionSpec("net.tls.certificateKeyFilePassword", STRING, ("tlsCertificateKeyFilePassword",)),
    OptionSpec("net.tls.CAFile", STRING, ("tlsCAFile",)),
    OptionSpec("net.tls.clusterFile", STRING, ("tlsClusterFile",)),
    OptionSpec("net.tls.allowConnectionsWithoutCertificates", SWITCH, ("tlsAllowConnectionsWithoutCertificates",)),
    OptionSpec("net.tls.allowInvalidCertificates", SWITCH, ("tlsAllowInvalidCertificates",)),
    OptionSpec("net.tls.allowInvalidHostnames", SWITCH, ("tlsAllowInvalidHostnames",)),
    # replication / sharding
    OptionSpec("replication.replSetName", STRING, ("replSet",)),
    OptionSpec("replication.oplogSizeMB", INT, ("oplogSize",)),
    OptionSpec("sharding.clusterRole", STRING, ()),  # CLI: --configsvr / --shardsvr (_CLI_SPECIAL)
    # security
    OptionSpec("security.authorization", STRING, ("auth",), implicit="enabled"),
    OptionSpec("security.keyFile", STRING, ("keyFile",)),
    OptionSpec("security.clusterAuthMode", STRING, ("clusterAuthMode",)),
    OptionSpec("security.transitionToAuth", SWITCH, ("transitionToAuth",)),
    OptionSpec("security.javascriptEnabled", BOOL, ("noscripting",)),
    OptionSpec("security.enableEncryption", SWITCH, ("enableEncryption",)),
    OptionSpec("security.encryptionCipherMode", STRING, ("encryptionCipherMode",)),
    OptionSpec("security.encryptionKeyFile", STRING, ("encryptionKeyFile",)),
    OptionSpec("security.vault.serverName", STRING, ("vaultServerName",)),
    OptionSpec("security.vault.port", INT, ("vaultPort",)),
    OptionSpec("security.vault.tokenFile", STRING, ("vaultTokenFile",)),
    OptionSpec("security.vault.secret", STRING, ("vaultSecret",)),
    OptionSpec("security.vault.secretVersion", INT, ("vaultSecretVersion",)),
    OptionSpec("security.vault.rotateMasterKey", SWITCH, ("vaultRotateMasterKey",)),
    OptionSpec("security.vault.serverCAFile", STRING, ("vaultServerCAFile",)),
    OptionSpec("security.vault.disableTLSForTesting", SWITCH, ("vaultDisableTLSForTesting",)),
    OptionSpec("security.kmip.serverName", STRING, ("kmipServerName",)),
    OptionSpec("security.kmip.port", INT, ("kmipPort",)),
    OptionSpec("security.kmip.serverCAFile", STRING, ("kmipServerCAFile",)),
    OptionSpec("security.kmip.clientCertificateFile", STRING, ("kmipClientCertificateFile",)),
    OptionSpec("security.kmip.clientCertificatePassword", STRING, ("kmipClientCertificatePassword",)),
    OptionSpec("security.kmip.connectRetries", INT, ("kmipConnectRetries",)),
    OptionSpec("security.kmip.connectTimeoutMS", INT, ("kmipConnectTimeoutMS",)),
    OptionSpec("security.kmip.keyIdentifier", STRING, ("kmipKeyIdentifier",)),
    OptionSpec("security.kmip.rotateMasterKey", SWITCH, ("kmipRotateMasterKey",)),
    OptionSpec("security.kmip.activateKeys", BOOL, ("kmipActivateKeys",)),
    OptionSpec("security.kmip.keyStatePollingSeconds", INT, ("kmipKeyStatePollingSeconds",)),
    # storage
    OptionSpec("storage.dbPath", STRING, ("dbpath",)),
    OptionSpec("storage.engine", STRING, ("storageEngine",)),
    OptionSpec("storage.directoryPerDB", SWITCH, ("directoryperdb",)),
    OptionSpec("storage.syncPeriodSecs", DOUBLE, ("syncdelay",)),
    OptionSpec("storage.wiredTiger.engineConfig.cacheSizeGB", DOUBLE, ("wiredTigerCacheSizeGB",)),
    OptionSpec("storage.wiredTiger.engineConfig.directoryForIndexes", SWITCH, ("wiredTigerDirectoryForIndexes",)),
    # systemLog
    OptionSpec("systemLog.destination", STRING, ()),
    OptionSpec("systemLog.path", STRING, ("logpath",)),
    OptionSpec("systemLog.logAppend", SWITCH, ("logappend",)),
    OptionSpec("systemLog.logRotate", STRING, ("logRotate",)),
    OptionSpec("systemLog.quiet", SWITCH, ("quiet",)),
    OptionSpec("systemLog.verbosity", INT, ()),
    OptionSpec("systemLog.timeStampFormat", STRING, ("timeStampFormat",)),
    # processManagement
    OptionSpec("processManagement.fork", SWITCH, ("fork",)),
    OptionSpec("processManagement.pidFilePath", STRING, ("pidfilepath",)),
    OptionSpec("processManagement.timeZoneInfo", STRING, ("timeZoneInfo",)),
    # operationProfiling
    OptionSpec("operationProfiling.mode", STRING, ()),
    OptionSpec("operationProfiling.slowOpThresholdMs", INT, ("slowms",)),
)
_BY_KEY = {spec.key: spec for spec in _SPECS}
_BY_CLI = {name: spec for spec in _SPECS for name in spec.cli}
# CLI flags whose meaning is the opposite of their YAML key (mongod's --nounixsocket...)
_NEGATED_CLI = {"nounixsocket", "noscripting"}
_CLI_SPECIAL = {
    "--syslog": ("systemLog.destination", "syslog"),
    # mongod canonicalizes these switches to sharding.clusterRole (mongod_options_sharding.idl)
    "--configsvr": ("sharding.clusterRole", "configsvr"),
    "--shardsvr": ("sharding.clusterRole", "shardsvr"),
}
_YAML_BOOLS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "yes": True,
    "Yes": True,
    "YES": True,
    "on": True,
    "On": True,
    "ON": True,
    "y": True,
    "Y": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "no": False,
    "No": False,
    "NO": False,
    "off": False,
    "Off": False,
    "OFF": False,
    "n": False,
    "N": False,
}


# -- typed result ------------------------------------------------------------------------------


@dataclasses.dataclass
class TlsOptions:
    """net.tls.*: the emulator's server serves TLS on the mongod port according to ``mode``."""

    mode: str = "disabled"
    certificate_key_file: str | None = None
    certificate_key_file_password: str | None = dataclasses.field(default=None, repr=False)
    ca_file: str | None = None
    cluster_file: str | None = None
    allow_connections_without_certificates: bool = False
    allow_invalid_certificates: bool = False
    allow_invalid_hostnames: bool = False


@dataclasses.dataclass
class NetOptions:
    port: int = DEFAULT_PORT
    bind_ip: list[str] = dataclasses.field(default_factory=lambda: ["127.0.0.1"])
    bind_ip_all: bool = False
    ipv6: bool = False
    max_incoming_connections: int = 65536
    tls: TlsOptions = dataclasses.field(default_factory=TlsOptions)


@dataclasses.dataclass
class ReplicationOptions:
    repl_set_name: str | None = None
    oplog_size_mb: int | None = None


@dataclasses.dataclass
class KmipOptions:
    """security.kmip.*, PSMDB defaults applied. ``server_name`` is split on ',' without trimming."""

    server_name: list[str] = dataclasses.field(default_factory=list)
    port: int = DEFAULT_KMIP_PORT
    server_ca_file: str | None = None
    client_certificate_file: str | None = None
    client_certificate_password: str | None = dataclasses.field(default=None, repr=False)
    connect_retries: int = DEFAULT_KMIP_CONNECT_RETRIES
    connect_timeout_ms: int = DEFAULT_KMIP_CONNECT_TIMEOUT_MS
    key_identifier: str | None = None
    rotate_master_key: bool = False
    activate_keys: bool = True
    # True only when activateKeys was set explicitly (7.0.14-8 tolerates Pre-Active keys otherwise)
    activate_keys_explicit: bool = False
    key_state_polling_seconds: int = DEFAULT_KMIP_KEY_STATE_POLLING_SECONDS

    @property
    def enabled(self) -> bool:
        return bool(self.server_name)


@dataclasses.dataclass
class VaultOptions:
    server_name: str | None = None
    rotate_master_key: bool = False


@dataclasses.dataclass
class SecurityOptions:
    authorization: str = "disabled"
    key_file: str | None = None
    cluster_auth_mode: str | None = None
    enable_encryption: bool = False
    encryption_cipher_mode: str = "AES256-CBC"
    encryption_key_file: str | None = None
    kmip: KmipOptions = dataclasses.field(default_factory=KmipOptions)
    vault: VaultOptions = dataclasses.field(default_factory=VaultOptions)

    @property
    def authorization_enabled(self) -> bool:
        return self.authorization == "enabled"


@dataclasses.dataclass
class StorageOptions:
    db_path: str = DEFAULT_DB_PATH
    engine: str = "wiredTiger"


@dataclasses.dataclass
class SystemLogOptions:
    destination: str | None = None  # None: stdout; "file": path; "syslog" is not emulated
    path: str | None = None
    log_append: bool = False
    quiet: bool = False
    verbosity: int = 0


@dataclasses.dataclass
class ProcessManagementOptions:
    fork: bool = False
    pid_file_path: str | None = None


@dataclasses.dataclass
class Options:
    net: NetOptions = dataclasses.field(default_factory=NetOptions)
    replication: ReplicationOptions = dataclasses.field(default_factory=ReplicationOptions)
    security: SecurityOptions = dataclasses.field(default_factory=SecurityOptions)
    storage: StorageOptions = dataclasses.field(default_factory=StorageOptions)
    system_log: SystemLogOptions = dataclasses.field(default_factory=SystemLogOptions)
    process_management: ProcessManagementOptions = dataclasses.field(default_factory=ProcessManagementOptions)
    set_parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    config_file: str | None = None
    # argv and parsed may hold passwords: kept out of repr()
    argv: list[str] = dataclasses.field(default_factory=list, repr=False)
    # what was set, typed, nested like the YAML, passwords included
    parsed: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def censored_parsed(self) -> dict[str, Any]:
        """``parsed`` as mongod shows it in getCmdLineOpts and log 21951 (see ``censor_parsed``)."""
        return censor_parsed(self.parsed)


def censor_parsed(parsed: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """mongod's censorBSONObj: string values of ``redact: true`` options become "<password>".

    security.kmip.clientCertificatePassword is not one of them: PSMDB echoes it.
    """
    out: dict[str, Any] = {}
    for key, value in parsed.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out[key] = censor_parsed(value, dotted + ".")
        elif dotted in REDACTED_KEYS and isinstance(value, str):
            out[key] = CENSORED
        else:
            out[key] = value
    return out


def censor_argv(argv: Sequence[str]) -> list[str]:
    """mongod's censorArgsVector: the value after (or ``=`` of) a ``redact: true`` flag."""
    out = list(argv)
    for index, arg in enumerate(out):
        name, has_value, _ = arg.partition("=")
        if name.lstrip("-") not in REDACTED_FLAGS or not name.startswith("-"):
            continue
        if has_value:
            out[index] = f"{name}={CENSORED}"
        elif index + 1 < len(out):
            out[index + 1] = CENSORED
    return out


# -- parsing -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str], read_file: Callable[[str], str] | None = None) -> Options:
    """Parse mongod's argv (without the program name). Raises OptionsError / HelpRequested /
    VersionRequested."""
    cli_values, config_path, set_parameters = _parse_cli(list(argv))
    file_values: dict[str, Any] = {}
    file_set_parameters: dict[str, str] = {}
    if config_path is not None:
        reader = read_file or _read_text
        try:
            text = reader(config_path)
        except OSError as exc:
            raise OptionsError(f"Error reading config file: {exc.strerror or exc}", hint=False) from exc
        try:
            document = yamlconf.parse(text)
        except yamlconf.YamlError as exc:
            raise OptionsError(f"Error parsing YAML config file: {exc}") from exc
        file_values, file_set_parameters = _flatten_config(document)
    values = {**file_values, **cli_values}
    typed = {key: _convert(_BY_KEY[key], raw) for key, raw in values.items()}
    options = _build(typed)
    options.set_parameters = {**file_set_parameters, **set_parameters}
    options.config_file = config_path
    options.argv = list(argv)
    options.parsed = _nest(typed)
    if config_path is not None:
        options.parsed["config"] = config_path
    if options.set_parameters:
        options.parsed["setParameter"] = dict(options.set_parameters)
    _validate(options, typed)
    _validate_replication(options, typed)
    return options


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _parse_cli(argv: list[str]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    values: dict[str, Any] = {}
    set_parameters: dict[str, str] = {}
    config_path: str | None = None
    index = 0

    def take_value(flag: str) -> str:
        nonlocal index
        if index >= len(argv):
            raise OptionsError(f"Error parsing command line: the required argument for option '{flag}' is missing")
        value = argv[index]
        index += 1
        return value

    while index < len(argv):
        token = argv[index]
        index += 1
        if token in ("--help", "-h"):
            raise HelpRequested()
        if token == "--version":
            raise VersionRequested()
        if token in _CLI_SPECIAL:
            key, value = _CLI_SPECIAL[token]
            values[key] = value
            continue
        if token.startswith("-v") and set(token[1:]) == {"v"}:
            values["systemLog.verbosity"] = str(len(token) - 1)
            continue
        if token in ("-f", "--config") or token.startswith("--config="):
            config_path = token.split("=", 1)[1] if "=" in token else take_value(token)
            continue
        if not token.startswith("--") or token == "--":
            raise OptionsError(f"Error parsing command line: too many positional options have been specified ({token})")
        name, has_inline, inline = token[2:].partition("=")
        if name == "setParameter":
            assignment = inline if has_inline else take_value(token)
            param, separator, param_value = assignment.partition("=")
            if not separator:
                raise OptionsError(f'Illegal option assignment: "{assignment}"')
            set_parameters[param] = param_value
            continue
        spec = _BY_CLI.get(name)
        if spec is None:
            raise OptionsError(f"Error parsing command line: unrecognised option '--{name}'")
        if spec.kind == SWITCH:
            if has_inline:
                raise OptionsError(f"Error parsing command line: option '--{name}' does not take any arguments")
            values[spec.key] = "false" if name in _NEGATED_CLI else "true"
        elif spec.kind == BOOL:
            if name in _NEGATED_CLI:
                values[spec.key] = "false"
            elif has_inline:
                values[spec.key] = inline
            elif index < len(argv) and argv[index] in _YAML_BOOLS:
                values[spec.key] = take_value(token)
            else:
                values[spec.key] = "true"
        elif spec.implicit is not None and not has_inline:
            values[spec.key] = spec.implicit
        else:
            values[spec.key] = inline if has_inline else take_value(token)
    if "systemLog.path" in values:
        # canonicalizeBaseOptions: --logpath is systemLog.path with systemLog.destination "file" (--syslog wins)
        if not values["systemLog.path"]:
            raise OptionsError("BadValue: logpath cannot be empty if supplied")
        if values.get("systemLog.destination") != "syslog":
            values["systemLog.destination"] = "file"
    return values, config_path, set_parameters


def _flatten_config(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested (or dotted) YAML keys -> {dotted key: raw value}; unknown keys are refused."""
    values: dict[str, Any] = {}
    set_parameters: dict[str, str] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if dotted == "setParameter":
                if not isinstance(value, dict):
                    raise OptionsError("Error parsing YAML config file: setParameter must be a mapping")
                for param, param_value in value.items():
                    set_parameters[str(param)] = "" if param_value is None else str(param_value)
                continue
            if dotted in _BY_KEY:
                if isinstance(value, dict):
                    raise OptionsError(f"Error parsing YAML config file: {dotted} must be a scalar")
                if dotted in values:
                    raise OptionsError(f"Error parsing YAML config file: duplicate key: {dotted}")
                values[dotted] = value
            elif isinstance(value, dict) and any(k.startswith(dotted + ".") for k in _BY_KEY):
                walk(value, dotted + ".")
            else:
                raise OptionsError(f"Unrecognized option: {_first_leaf(dotted, value)}")

    walk(document, "")
    return values, set_parameters


def _first_leaf(dotted: str, value: Any) -> str:
    """mongod names the full key of an unknown option (``foo.bar``, not ``foo``)."""
    while isinstance(value, dict) and value:
        key, value = next(iter(value.items()))
        dotted = f"{dotted}.{key}"
    return dotted


def _convert(spec: OptionSpec, raw: Any) -> Any:
    if raw is None:
        raise OptionsError(f"Error parsing YAML config file: option {spec.key} has no value")
    if spec.kind == STRING and spec.key == "net.bindIp" and isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    if isinstance(raw, (list, dict)):
        raise OptionsError(f"Error parsing YAML config file: {spec.key} must be a scalar, not a sequence")
    text = str(raw)
    if spec.kind in (SWITCH, BOOL):
        if text not in _YAML_BOOLS:
            raise OptionsError(f'Error parsing option "{spec.key}" as bool in: {text}')
        return _YAML_BOOLS[text]
    if spec.kind == INT:
        try:
            return int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        except ValueError:
            raise OptionsError(f'Error parsing option "{spec.key}" as int in: {text}') from None
    if spec.kind == DOUBLE:
        try:
            return float(text)
        except ValueError:
            raise OptionsError(f'Error parsing option "{spec.key}" as double in: {text}') from None
    return text


def _nest(typed: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for dotted in sorted(typed):
        node = root
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = typed[dotted]
    return root


def _build(typed: dict[str, Any]) -> Options:
    def get(key: str, default: Any) -> Any:
        return typed.get(key, default)

    tls = TlsOptions(
        mode=get("net.tls.mode", "disabled"),
        certificate_key_file=get("net.tls.certificateKeyFile", None),
        certificate_key_file_password=get("net.tls.certificateKeyFilePassword", None),
        ca_file=get("net.tls.CAFile", None),
        cluster_file=get("net.tls.clusterFile", None),
        allow_connections_without_certificates=get("net.tls.allowConnectionsWithoutCertificates", False),
        allow_invalid_certificates=get("net.tls.allowInvalidCertificates", False),
        allow_invalid_hostnames=get("net.tls.allowInvalidHostnames", False),
    )
    bind_ip_all = get("net.bindIpAll", False)
    bind_ip = [part.strip() for part in str(get("net.bindIp", "127.0.0.1")).split(",") if part.strip()]
    net = NetOptions(
        port=get("net.port", DEFAULT_PORT),
        bind_ip=["0.0.0.0"] if bind_ip_all else bind_ip,
        bind_ip_all=bind_ip_all,
        ipv6=get("net.ipv6", False),
        max_incoming_connections=get("net.maxIncomingConnections", 65536),
        tls=tls,
    )
    server_name = get("security.kmip.serverName", None)
    kmip = KmipOptions(
        server_name=server_name.split(",") if server_name else [],
        port=get("security.kmip.port", DEFAULT_KMIP_PORT),
        server_ca_file=get("security.kmip.serverCAFile", None),
        client_certificate_file=get("security.kmip.clientCertificateFile", None),
        client_certificate_password=get("security.kmip.clientCertificatePassword", None),
        connect_retries=get("security.kmip.connectRetries", DEFAULT_KMIP_CONNECT_RETRIES),
        connect_timeout_ms=get("security.kmip.connectTimeoutMS", DEFAULT_KMIP_CONNECT_TIMEOUT_MS),
        key_identifier=get("security.kmip.keyIdentifier", None),
        rotate_master_key=get("security.kmip.rotateMasterKey", False),
        activate_keys=get("security.kmip.activateKeys", True),
        activate_keys_explicit="security.kmip.activateKeys" in typed,
        key_state_polling_seconds=get("security.kmip.keyStatePollingSeconds", DEFAULT_KMIP_KEY_STATE_POLLING_SECONDS),
    )
    security = SecurityOptions(
        authorization=get("security.authorization", "disabled"),
        key_file=get("security.keyFile", None),
        cluster_auth_mode=get("security.clusterAuthMode", None),
        enable_encryption=get("security.enableEncryption", False),
        encryption_cipher_mode=get("security.encryptionCipherMode", "AES256-CBC"),
        encryption_key_file=get("security.encryptionKeyFile", None),
        kmip=kmip,
        vault=VaultOptions(
            server_name=get("security.vault.serverName", None),
            rotate_master_key=get("security.vault.rotateMasterKey", False),
        ),
    )
    return Options(
        net=net,
        replication=ReplicationOptions(
            repl_set_name=get("replication.replSetName", None),
            oplog_size_mb=get("replication.oplogSizeMB", None),
        ),
        security=security,
        storage=StorageOptions(
            db_path=get("storage.dbPath", DEFAULT_DB_PATH),
            engine=get("storage.engine", "wiredTiger"),
        ),
        system_log=SystemLogOptions(
            destination=get("systemLog.destination", None),
            path=get("systemLog.path", None),
            log_append=get("systemLog.logAppend", False),
            quiet=get("systemLog.quiet", False),
            verbosity=get("systemLog.verbosity", 0),
        ),
        process_management=ProcessManagementOptions(
            fork=get("processManagement.fork", False),
            pid_file_path=get("processManagement.pidFilePath", None),
        ),
    )


def _requires(typed: dict[str, Any], key: str, other: str) -> None:
    # moe's RequiresOptionKeyConstraint; a switch set to false counts as "not specified"
    if typed.get(key) not in (None, False) and typed.get(other) in (None, False):
        raise OptionsError(f"BadValue: {other} is required when {key} is specified")


def _conflicts(typed: dict[str, Any], key: str, other: str) -> None:
    # moe's MutuallyExclusiveKeyConstraint
    if typed.get(key) not in (None, False) and typed.get(other) not in (None, False):
        raise OptionsError(f"BadValue: {other} is not allowed when {key} is specified")


def _validate(options: Options, typed: dict[str, Any]) -> None:
    for key in ("net.port", "security.kmip.port", "security.vault.port"):
        value = typed.get(key)
        if value is not None and not 0 <= value <= 65535:
            raise OptionsError(f"BadValue: {key} must be between 0 and 65535, got {value}")
    retries = typed.get("security.kmip.connectRetries")
    if retries is not None and retries < 0:
        raise OptionsError(f"BadValue: security.kmip.connectRetries must be greater than or equal to 0, got {retries}")
    timeout = typed.get("security.kmip.connectTimeoutMS")
    if timeout is not None and timeout < MIN_KMIP_CONNECT_TIMEOUT_MS:
        raise OptionsError(
            f"BadValue: security.kmip.connectTimeoutMS must be greater than or equal to "
            f"{MIN_KMIP_CONNECT_TIMEOUT_MS}, got {timeout}"
        )
    mode = typed.get("security.encryptionCipherMode")
    if mode is not None and mode not in CIPHER_MODES:
        raise OptionsError(
            f"BadValue: security.encryptionCipherMode must be one of {', '.join(CIPHER_MODES)}, got '{mode}'"
        )
    tls_mode = typed.get("net.tls.mode")
    if tls_mode is not None and tls_mode not in TLS_MODES:
        raise OptionsError(f"BadValue: unsupported value for tlsMode {tls_mode}")
    if tls_mode not in (None, "disabled") and not typed.get("net.tls.certificateKeyFile"):
        raise OptionsError("BadValue: need tlsCertificateKeyFile or certificateSelector when TLS is enabled")
    authorization = typed.get("security.authorization")
    if authorization is not None and authorization not in ("enabled", "disabled"):
        raise OptionsError(f"BadValue: security.authorization must be 'enabled' or 'disabled', got '{authorization}'")
    _validate_system_log(typed)
    if typed.get("processManagement.fork") and not (typed.get("systemLog.path") or typed.get("systemLog.destination")):
        raise OptionsError("BadValue: --fork has to be used with --logpath or --syslog")

    for key in (
        "security.encryptionCipherMode",
        "security.encryptionKeyFile",
        "security.kmip.serverName",
        "security.vault.serverName",
    ):
        _requires(typed, key, "security.enableEncryption")
    _requires(typed, "security.kmip.serverName", "security.kmip.clientCertificateFile")
    _requires(typed, "security.kmip.clientCertificatePassword", "security.kmip.clientCertificateFile")
    _conflicts(typed, "security.kmip.serverName", "security.encryptionKeyFile")
    _conflicts(typed, "security.kmip.serverName", "security.vault.serverName")
    _conflicts(typed, "security.vault.serverName", "security.encryptionKeyFile")
    if options.security.enable_encryption and not (
        options.security.kmip.enabled or options.security.encryption_key_file or options.security.vault.server_name
    ):
        raise OptionsError(
            "BadValue: security.enableEncryption requires one of security.encryptionKeyFile, "
            "security.vault.serverName or security.kmip.serverName"
        )


def _validate_system_log(typed: dict[str, Any]) -> None:
    """storeBaseOptions (server_options_helpers.cpp, 7.0): a systemLog.path needs destination "file" (the
    command line's --logpath sets both), a file destination needs a path; logRotate "reopen" needs logAppend."""
    destination = typed.get("systemLog.destination")
    path = typed.get("systemLog.path")
    if destination == "file" and not path:
        raise OptionsError("BadValue: systemLog.path is required if systemLog.destination is to a file")
    if destination not in (None, "file", "syslog"):
        raise OptionsError(
            f"BadValue: Bad value for systemLog.destination: {destination}.  Supported targets are: (syslog|file)"
        )
    if path and destination != "file":
        raise OptionsError("BadValue: Can only use systemLog.path if systemLog.destination is to a file")
    rotate = typed.get("systemLog.logRotate")
    if rotate == "reopen" and not typed.get("systemLog.logAppend"):
        raise OptionsError("BadValue: logAppend must equal true if logRotate is set to reopen")
    if rotate not in (None, "reopen", "rename"):
        raise OptionsError(f"BadValue: unsupported value for logRotate {rotate}")


def _validate_replication(options: Options, typed: dict[str, Any]) -> None:
    """replication.oplogSizeMB and sharding.clusterRole (mongod_options.cpp), and the setParameters the server
    implements."""
    oplog_size = typed.get("replication.oplogSizeMB")
    if oplog_size is not None and oplog_size <= 0:
        raise OptionsError(f"BadValue: bad --oplogSize, arg must be greater than 0,found: {oplog_size}")
    role = typed.get("sharding.clusterRole")
    if role is not None:
        if role not in ("configsvr", "shardsvr"):
            raise OptionsError(
                f"BadValue: Bad value for sharding.clusterRole: {role}.  "
                "Supported modes are: (1) configsvr, (2) shardsvr"
            )
        if role == "configsvr" and not typed.get("replication.replSetName"):
            raise OptionsError(
                "BadValue: Cannot start a configsvr as a standalone server. Please use the option --replSet to start "
                "the node as a replica set."
            )
        if "net.port" not in typed:  # ServerGlobalParams::ConfigServerPort / ShardServerPort
            options.net.port = 27019 if role == "configsvr" else 27018
        if role == "configsvr" and "storage.dbPath" not in typed:
            options.storage.db_path = "/data/configdb"
    try:
        server_parameters.startup_values(options.set_parameters)
    except server_parameters.ParameterError as exc:
        raise OptionsError(f"BadValue: {exc}", hint=False) from exc
