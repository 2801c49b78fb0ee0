# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Checking every KMIP server of a mongod the way mongod would use it (kmip_server_info).

Each server is probed in its own thread (one TLS session each: connect, Discover Versions as
the first exchange, Query), so a stalled server costs one connect_timeout_ms, not one per
server. The session of the server mongod would select stays open for the key check.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    KmipConnectionError,
    KmipOperationError,
    KmipOperationNotSupportedError,
    KmipOpsError,
    KmipProtocolError,
    KmipServerError,
    KmipTlsVerifyError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import (
    PSMDB_OPERATIONS,
    KmipClient,
    KmipSession,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.transport import ConnectInfo, Endpoint
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import describe_der_certificate

#: Certificates that expire sooner than this are reported as a warning.
EXPIRY_WARNING_DAYS = 30


@dataclasses.dataclass
class Problem:
    where: str  # a server (host:port) or an option name
    message: str
    severity: str = "error"  # "error": mongod could not start with this setup; "warning": degraded

    def as_result(self) -> dict[str, str]:
        return {"where": self.where, "severity": self.severity, "message": self.message}


@dataclasses.dataclass
class ServerReport:
    endpoint: Endpoint
    attempts: int = 0
    #: wall time of the last attempt, connect to the end of Query
    elapsed_ms: float | None = None
    ok: bool = False
    error: str | None = None
    error_kind: str | None = None
    resolved_address: str | None = None
    tcp: dict[str, Any] = dataclasses.field(default_factory=lambda: {"ok": False, "latency_ms": None})
    tls: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"ok": False, "latency_ms": None, "version": None, "cipher": None}
    )
    certificate: dict[str, Any] | None = None
    kmip: dict[str, Any] = dataclasses.field(default_factory=dict)
    session: KmipSession | None = dataclasses.field(default=None, repr=False)

    def as_result(self) -> dict[str, Any]:
        return {
            "address": self.endpoint.label,
            "host": self.endpoint.host,
            "port": self.endpoint.port,
            "resolved_address": self.resolved_address,
            "ok": self.ok,
            "attempts": self.attempts,
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
            "error_kind": self.error_kind,
            "tcp": dict(self.tcp),
            "tls": dict(self.tls),
            "certificate": self.certificate,
            "kmip": dict(self.kmip),
        }


def _record_connect(report: ServerReport, info: ConnectInfo) -> None:
    report.resolved_address = info.address
    if info.tcp_ms is not None:
        report.tcp = {"ok": True, "latency_ms": info.tcp_ms}
    if info.tls_ms is not None:
        report.tls = {"ok": True, "latency_ms": info.tls_ms, "version": info.tls_version, "cipher": info.cipher}
        report.certificate = describe_der_certificate(info.peer_certificate_der or b"")
        report.certificate.update(chain_ok=True, hostname_match=True)


def _record_failure(report: ServerReport, error: KmipServerError) -> None:
    report.ok = False
    report.error = str(error)
    report.error_kind = error.kind
    if isinstance(error, KmipTlsVerifyError):
        # The handshake stopped at the first verification error: what it says is known, the rest not.
        report.certificate = {
            "chain_ok": error.reason not in ("unknown_ca", "other"),
            "hostname_match": False if error.reason == "hostname_mismatch" else None,
            "verify_error": error.reason,
        }


def probe_server(client: KmipClient, endpoint: Endpoint) -> ServerReport:
    start = time.monotonic()
    report = _probe(client, endpoint)
    report.elapsed_ms = round((time.monotonic() - start) * 1000, 1)
    return report


def _probe(client: KmipClient, endpoint: Endpoint) -> ServerReport:
    """Connect, Discover Versions (first exchange, under the connect timer) and Query."""
    report = ServerReport(endpoint=endpoint)
    info = ConnectInfo()
    try:
        session = client.open(endpoint, info)
    except KmipConnectionError as error:
        _record_connect(report, info)
        _record_failure(report, error)
        return report
    _record_connect(report, info)
    kmip: dict[str, Any] = {
        "version_used": client.kmip_version,
        "discover_versions_supported": None,
        "versions": None,
        "offers_1_0": None,
        "operations": None,
        "psmdb_operations_missing": None,
        "latency_ms": None,
    }
    report.kmip = kmip
    try:
        start = time.monotonic()
        try:
            kmip["versions"] = session.discover_versions()
            kmip["discover_versions_supported"] = True
            kmip["offers_1_0"] = "1.0" in kmip["versions"]
        except KmipOperationNotSupportedError as error:
            # Still a well-formed KMIP answer: the server speaks the version, it just lacks the operation.
            kmip["discover_versions_supported"] = False
            kmip["discover_versions_error"] = error.reason
        kmip["latency_ms"] = round((time.monotonic() - start) * 1000, 1)
        try:
            kmip["operations"] = session.query_operations()
            kmip["psmdb_operations_missing"] = [op for op in PSMDB_OPERATIONS if op not in kmip["operations"]]
        except KmipOperationNotSupportedError as error:
            kmip["query_error"] = error.reason
    except KmipOperationError as error:
        # e.g. Permission Denied: PyKMIP accepts a certificate without extendedKeyUsage in TLS, then
        # refuses every request
        session.close()
        _record_failure(report, error)
        return report
    except (KmipConnectionError, KmipProtocolError) as error:
        session.close()
        _record_failure(report, error)
        return report
    report.ok = True
    report.session = session
    return report


def probe_all(client: KmipClient) -> list[ServerReport]:
    """Every server, concurrently; more passes (connect_retries) only while none works, like mongod."""
    reports: dict[Endpoint, ServerReport] = {}
    for _pass in range(client.passes):
        todo = [ep for ep in client.endpoints if ep not in reports or not reports[ep].ok]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool:
            for endpoint, report in zip(todo, pool.map(lambda ep: probe_server(client, ep), todo), strict=True):
                report.attempts = (reports[endpoint].attempts if endpoint in reports else 0) + 1
                reports[endpoint] = report
        if any(r.ok for r in reports.values()):
            break
    return [reports[ep] for ep in client.endpoints]


def server_problems(reports: list[ServerReport], selected: ServerReport | None, kmip_version: str) -> list[Problem]:
    problems = []
    severity = "warning" if selected else "error"
    for report in reports:
        where = report.endpoint.label
        if not report.ok:
            problems.append(Problem(where, report.error or "unusable", severity))
            continue
        if report.certificate and report.certificate.get("days_left", EXPIRY_WARNING_DAYS) < EXPIRY_WARNING_DAYS:
            problems.append(
                Problem(where, f"the server certificate expires in {report.certificate['days_left']} days", "warning")
            )
        missing = report.kmip.get("psmdb_operations_missing")
        if missing:
            problems.append(
                Problem(
                    where,
                    f"the server does not offer {', '.join(missing)} (Query), which PSMDB needs",
                    "error" if report is selected else "warning",
                )
            )
        if report.kmip.get("offers_1_0") is False:
            problems.append(
                Problem(where, "Discover Versions does not list KMIP 1.0, the only version PSMDB speaks", "warning")
            )
    if kmip_version != "1.0":
        problems.append(
            Problem("kmip_version", f"checked with KMIP {kmip_version}; PSMDB itself speaks only KMIP 1.0", "warning")
        )
    return problems


def key_check_problem(where: str, error: KmipOpsError) -> Problem:
    return Problem(where, str(error), "error")
