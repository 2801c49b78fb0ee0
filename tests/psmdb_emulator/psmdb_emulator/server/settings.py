"""What the network half needs from the mongod configuration, and the TLS contexts built from it."""

from __future__ import annotations

import copy
import shutil
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import server_parameters

if TYPE_CHECKING:
    from ..options import Options

TLS_MODES = ("disabled", "allowTLS", "preferTLS", "requireTLS")
MIB = 1024 * 1024


@dataclass
class TlsSettings:
    mode: str = "disabled"
    certificate_key_file: str | None = None
    certificate_key_file_password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cluster_file: str | None = None
    cluster_password: str | None = field(default=None, repr=False)
    allow_connections_without_certificates: bool = False
    allow_invalid_certificates: bool = False
    allow_invalid_hostnames: bool = False

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    def server_context(self) -> ssl.SSLContext:
        if not self.certificate_key_file:
            raise ValueError("net.tls.certificateKeyFile is required when net.tls.mode is not disabled")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certificate_key_file, password=self.certificate_key_file_password)
        if self.ca_file:
            context.load_verify_locations(self.ca_file)
            # Like mongod: with a CA file clients must present a certificate unless explicitly allowed not to.
            if self.allow_invalid_certificates or self.allow_connections_without_certificates:
                context.verify_mode = ssl.CERT_OPTIONAL
            else:
                context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """For connections to other members: the cluster certificate, or the server one, as client cert."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file:
            context.load_verify_locations(self.ca_file)
        else:
            context.load_default_certs()
        if self.allow_invalid_certificates:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.allow_invalid_hostnames:
            context.check_hostname = False
        if self.cluster_file:
            context.load_cert_chain(self.cluster_file, password=self.cluster_password)
        elif self.certificate_key_file:
            context.load_cert_chain(self.certificate_key_file, password=self.certificate_key_file_password)
        return context


@dataclass
class ServerSettings:
    bind_ips: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    port: int = 27017
    repl_set_name: str | None = None
    authorization: bool = False
    key_file: str | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    # getCmdLineOpts: the command line and the parsed configuration (passwords are masked on output).
    argv: list[str] = field(default_factory=list)
    parsed: dict[str, Any] = field(default_factory=dict)
    max_incoming_connections: int = 1000
    cluster_role: str | None = None  # sharding.clusterRole: configsvr / shardsvr
    # setParameter values (server_parameters.SPECS), typed; some may change at runtime (setParameter command).
    parameters: dict[str, server_parameters.ParameterValue] = field(
        default_factory=lambda: server_parameters.startup_values({})
    )
    db_path: str = "/data/db"
    oplog_size_mb: int | None = None  # replication.oplogSizeMB

    @property
    def periodic_noop_interval(self) -> float:
        # A config server always writes a no-op every second (ReplicationCoordinatorImpl's constructor).
        return 1.0 if self.cluster_role == "configsvr" else float(self.parameters["periodicNoopIntervalSecs"])

    @property
    def signaled_shutdown_timeout(self) -> float:
        return int(self.parameters["shutdownTimeoutMillisForSignaledShutdown"]) / 1000

    def configured_oplog_bytes(self) -> int:
        """The oplog's maximum size when it is created: replication.oplogSizeMB, else mongod's default for
        WiredTiger on Linux (5% of the free disk space, at least 990 MB and at most 50 GB)."""
        if self.oplog_size_mb:
            return self.oplog_size_mb * MIB
        try:
            free = shutil.disk_usage(self.db_path).free
        except OSError:
            free = 0
        return min(max(free // 20, 990 * MIB), 50 * 1024 * MIB)

    @property
    def oplog_override_bytes(self) -> int:
        """psmdbEmulatorOplogMaxBytes (emulator-only): replaces the oplog's maximum size, even a stored one."""
        return int(self.parameters["psmdbEmulatorOplogMaxBytes"])

    @property
    def auth_enabled(self) -> bool:
        # A keyFile turns on access control in mongod, as security.authorization does.
        return self.authorization or bool(self.key_file)

    @classmethod
    def from_options(cls, options: Options) -> ServerSettings:
        tls = options.net.tls
        return cls(
            bind_ips=["0.0.0.0"] if options.net.bind_ip_all else list(options.net.bind_ip),
            port=options.net.port,
            repl_set_name=options.replication.repl_set_name,
            authorization=options.security.authorization_enabled,
            key_file=options.security.key_file,
            tls=TlsSettings(
                mode=tls.mode,
                certificate_key_file=tls.certificate_key_file,
                certificate_key_file_password=tls.certificate_key_file_password,
                ca_file=tls.ca_file,
                cluster_file=tls.cluster_file,
                allow_connections_without_certificates=tls.allow_connections_without_certificates,
                allow_invalid_certificates=tls.allow_invalid_certificates,
                allow_invalid_hostnames=tls.allow_invalid_hostnames,
            ),
            argv=["mongod", *options.argv],
            parsed=copy.deepcopy(options.parsed),
            max_incoming_connections=options.net.max_incoming_connections,
            cluster_role=options.parsed.get("sharding", {}).get("clusterRole"),
            parameters=server_parameters.startup_values(options.set_parameters),
            db_path=options.storage.db_path,
            oplog_size_mb=options.replication.oplog_size_mb,
        )


def read_key_file(path: str) -> str:
    """mongod's keyFile: base64 characters, whitespace ignored."""
    with open(path, encoding="ascii") as handle:
        key = "".join(handle.read().split())
    if len(key) < 6:
        raise ValueError(f"security.keyFile {path}: the key is too short")
    return key
