# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Checking every KMIP server of a mongod the way mongod would use it (kmip_server_info).

Each server is probed in its own thread (one TLS session each), so a stalled server costs one
connect_timeout_ms, not one per server. The first exchange, under the connect timer, is what
mongod itself sends at start: Get Attributes(State) of the key identifier, or of an identifier
that exists nowhere when there is none. A server is usable when that answers (Item Not Found
included), as for mongod, whose failover moves on after any other failure status.

Then, for information only, Discover Versions (KMIP 1.1 and later: it is not a KMIP 1.0
operation) and Query. PSMDB sends neither, so a least-privilege KMS (e.g. a HashiCorp Vault
KMIP role granted only register, activate, get and get_attributes) may refuse them, with any
result reason, or even drop the session: that is reported as a note, never as a problem.
The session of the server mongod would select stays open for the rest of the key check.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
import uuid
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    KmipConnectionError,
    KmipItemNotFoundError,
    KmipOperationError,
    KmipOpsError,
    KmipPermissionDeniedError,
    KmipProtocolError,
    KmipServerError,
    KmipTlsVerifyError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import (
    PSMDB_OPERATIONS,
    KmipClient,
    KmipSession,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.keys import (
    MongodKeyCheck,
    absent_key_check,
    check_after_state,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.transport import ConnectInfo, Endpoint
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import describe_der_certificate

#: Certificates that expire sooner than this are reported as a warning.
EXPIRY_WARNING_DAYS = 30
#: What mongod sends first at start with a keyIdentifier; the probe sends the same.
MONGOD_FIRST_OPERATION = "Get Attributes"
#: Answers to Get Attributes of a made-up identifier that say nothing against the identity: the
#: server may reject the form of an identifier it did not issue. Anything else but Item Not Found
#: fails the server, as any failure status but Item Not Found makes mongod move on.
MADE_UP_IDENTIFIER_ANSWERS = ("Invalid Field",)
OPERATION_DENIED_ADVICE = (
    "This client identity may not send Get Attributes, which mongod sends at every start with a key: "
    "grant PSMDB's operations to it (a HashiCorp Vault KMIP role needs operation_register, "
    "operation_activate, operation_get and operation_get_attributes)"
)


def made_up_identifier() -> str:
    """A key identifier no KMIP server holds (random, UUID form like most servers' own)."""
    return str(uuid.uuid4())


@dataclasses.dataclass
class Note:
    """Information that is not a problem (e.g. a least-privilege KMS refusing Query)."""

    where: str
    message: str

    def as_result(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message}


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
    #: the answer to Get Attributes(State) of the key identifier: its attributes, or None when
    #: the server answered Item Not Found (unset when no key identifier was probed)
    key_state: list[Any] | None = dataclasses.field(default=None, repr=False)
    key_found: bool | None = None

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


def probe_server(client: KmipClient, endpoint: Endpoint, key_identifier: str | None = None) -> ServerReport:
    start = time.monotonic()
    report = _probe(client, endpoint, key_identifier)
    report.elapsed_ms = round((time.monotonic() - start) * 1000, 1)
    return report


def _probe(client: KmipClient, endpoint: Endpoint, key_identifier: str | None) -> ServerReport:
    """Connect, mongod's Get Attributes(State) under the connect timer, then Discover Versions and Query."""
    report = ServerReport(endpoint=endpoint)
    info = ConnectInfo()
    try:
        session = client.open(endpoint, info)
    except KmipConnectionError as error:
        _record_connect(report, info)
        _record_failure(report, error)
        return report
    _record_connect(report, info)
    exchange: dict[str, Any] = {
        "operation": MONGOD_FIRST_OPERATION,
        "key_identifier": key_identifier,
        "result": None,
    }
    report.kmip = {
        "version_used": client.kmip_version,
        "mongod_exchange": exchange,
        "latency_ms": None,
        "discover_versions_supported": None,
        "versions": None,
        "offers_1_0": None,
        "operations": None,
        "psmdb_operations_missing": None,
        "declined": [],
    }
    start = time.monotonic()
    try:
        attributes = session.get_attributes(key_identifier or made_up_identifier(), ["State"])
        exchange["result"] = "Success"
        if key_identifier:
            report.key_found, report.key_state = True, attributes
    except KmipItemNotFoundError as error:
        exchange["result"] = error.reason
        if key_identifier:
            report.key_found = False
    except KmipOperationError as error:
        # e.g. Permission Denied: the identity may not read keys (a KMS role without get_attributes,
        # a key owned by another identity, PyKMIP refusing a certificate without clientAuth)
        exchange["result"] = error.reason
        if key_identifier or error.reason not in MADE_UP_IDENTIFIER_ANSWERS:
            session.close()
            if isinstance(error, KmipPermissionDeniedError) and not key_identifier:
                # no object is involved: it is the operation that this identity may not send
                error = KmipPermissionDeniedError(
                    error.server, error.operation, error.reason, error.server_message, OPERATION_DENIED_ADVICE
                )
            _record_failure(report, error)
            return report
    except (KmipConnectionError, KmipProtocolError) as error:
        session.close()
        _record_failure(report, error)
        return report
    report.kmip["latency_ms"] = round((time.monotonic() - start) * 1000, 1)
    report.ok = True
    report.session = _ask_for_information(session, report.kmip)
    return report


def _ask_for_information(session: KmipSession, kmip: dict[str, Any]) -> KmipSession | None:
    """Discover Versions and Query, which mongod never sends; the session, or None if they ended it.

    A refusal, whatever its result reason, is recorded in ``kmip["declined"]``: HashiCorp
    Vault grants operation_discover_versions and operation_query per role, separately from what
    PSMDB needs.
    """
    asks: list[tuple[str, Any]] = [("Query", session.query_operations)]
    if session.kmip_version != "1.0":  # not a KMIP 1.0 operation: mongod's protocol has none
        asks.insert(0, ("Discover Versions", session.discover_versions))
    for operation, ask in asks:
        try:
            answer = ask()
        except KmipOperationError as error:
            kmip["declined"].append({"operation": operation, "reason": error.reason, "message": error.server_message})
            if operation == "Discover Versions":
                kmip["discover_versions_supported"] = False
            continue
        except (KmipConnectionError, KmipProtocolError) as error:
            # Some servers end the session on a refused operation: what mongod does still worked.
            kmip["declined"].append({"operation": operation, "reason": None, "message": str(error)})
            session.close()
            return None
        if operation == "Discover Versions":
            kmip.update(discover_versions_supported=True, versions=answer, offers_1_0="1.0" in answer)
        else:
            kmip["operations"] = answer
            kmip["psmdb_operations_missing"] = [op for op in PSMDB_OPERATIONS if op not in answer]
    return session


def probe_all(client: KmipClient, key_identifier: str | None = None) -> list[ServerReport]:
    """Every server, concurrently; more passes (connect_retries) only while none works, like mongod."""
    reports: dict[Endpoint, ServerReport] = {}
    for _pass in range(client.passes):
        todo = [ep for ep in client.endpoints if ep not in reports or not reports[ep].ok]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool:
            outcomes = pool.map(lambda ep: probe_server(client, ep, key_identifier), todo)
            for endpoint, report in zip(todo, outcomes, strict=True):
                report.attempts = (reports[endpoint].attempts if endpoint in reports else 0) + 1
                reports[endpoint] = report
        if any(r.ok for r in reports.values()):
            break
    return [reports[ep] for ep in client.endpoints]


def check_selected_key(client: KmipClient, selected: ServerReport, key_identifier: str) -> MongodKeyCheck:
    """mongod's start sequence on the selected server, from the probe's Get Attributes(State) on."""
    if not selected.key_found:
        return absent_key_check(key_identifier)
    if selected.session is None:  # Query or Discover Versions ended the probe's session
        selected.session = client.open(selected.endpoint)
    return check_after_state(selected.session, key_identifier, selected.key_state or [])


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
    problems.extend(key_spread_problems(reports, selected))
    if kmip_version != "1.0":
        problems.append(
            Problem("kmip_version", f"checked with KMIP {kmip_version}; PSMDB itself speaks only KMIP 1.0", "warning")
        )
    return problems


def key_spread_problems(reports: list[ServerReport], selected: ServerReport | None) -> list[Problem]:
    """A server that answers Item Not Found for the key the selected server holds.

    mongod moves on to the next server of serverName when one fails (timeout, TLS, any status but
    Item Not Found) - at start and at every key state poll - but takes Item Not Found as "the key
    is absent" and shuts down (29121, exit 1001). So every server listed must serve the same keys
    (one clustered KMS); otherwise one timed-out poll of the first server takes mongod down.
    """
    if selected is None or not selected.key_found:
        return []
    return [
        Problem(
            report.endpoint.label,
            f"the server answered Item Not Found for the key {selected.endpoint.label} holds: if "
            f"{selected.endpoint.label} fails once (a timed-out key state poll is enough), mongod moves on to "
            "this server, takes the key for absent and shuts down (29121). List only servers of one KMS cluster "
            "that replicates its keys",
            "warning",
        )
        for report in reports
        if report is not selected and report.ok and report.key_found is False
    ]


def server_notes(reports: list[ServerReport]) -> list[Note]:
    """What usable servers declined that mongod never sends, and what is therefore not proven."""
    notes = []
    for report in reports:
        if not report.ok:
            continue
        where = report.endpoint.label
        exchange = report.kmip["mongod_exchange"]
        if exchange["key_identifier"] is None and exchange["result"] in MADE_UP_IDENTIFIER_ANSWERS:
            notes.append(
                Note(
                    where,
                    f"Get Attributes of an identifier that exists nowhere answered {exchange['result']}, not "
                    "Item Not Found: the server may refuse identifiers it did not issue. Give key_identifier "
                    "to check the identity with mongod's own key",
                )
            )
        for declined in report.kmip["declined"]:
            how = f"({declined['reason']})" if declined["reason"] else f"and ended the session ({declined['message']})"
            text = f"the server declined {declined['operation']} {how}; PSMDB never sends it, so mongod is not affected"
            if declined["operation"] == "Query":
                text += (
                    ". Which operations it offers is therefore unknown: mongod's Get Attributes was answered "
                    f"({exchange['result']}), while Register and Activate, sent by mongod's first start without "
                    "a keyIdentifier, cannot be tried without creating a key"
                )
            notes.append(Note(where, text))
    return notes


def key_check_problem(where: str, error: KmipOpsError) -> Problem:
    return Problem(where, str(error), "error")
