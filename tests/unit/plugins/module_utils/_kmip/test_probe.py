# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_kmip.probe: every server checked concurrently, failover passes like mongod, the problems reported."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import probe
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.transport import ConnectInfo, Endpoint
from unit.utils.mongod_pki import Pki, make_pki

ALL_PSMDB = ["Register", "Activate", "Get", "Get Attributes", "Locate", "Query", "Discover Versions"]


@pytest.fixture(scope="module", autouse=True)
def server_certificate(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What every fake TLS handshake presents (a real handshake always has a peer certificate)."""
    pki: Pki = make_pki(tmp_path_factory.mktemp("pki"))
    cert = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    FakeClient.certificate_der = cert.public_bytes(serialization.Encoding.DER)
    return FakeClient.certificate_der


class FakeSession:
    def __init__(self, versions: list[str] | Exception, operations: list[str] | Exception) -> None:
        self.versions = versions
        self.operations = operations
        self.closed = False

    def discover_versions(self) -> list[str]:
        if isinstance(self.versions, Exception):
            raise self.versions
        return self.versions

    def query_operations(self) -> list[str]:
        if isinstance(self.operations, Exception):
            raise self.operations
        return self.operations

    def close(self) -> None:
        self.closed = True


class FakeClient:
    """Scripted outcome per host: a FakeSession, or the typed error ``open`` raises."""

    kmip_version = "1.0"
    certificate_der = b""

    def __init__(self, outcomes: dict[str, Any], passes: int = 1) -> None:
        self.outcomes = outcomes
        self.passes = passes
        self.endpoints = [Endpoint(host, 5696) for host in outcomes]
        self.opened: list[str] = []
        self.before_open: Any = None

    def open(self, endpoint: Endpoint, info: ConnectInfo) -> FakeSession:
        if self.before_open:
            self.before_open()
        self.opened.append(endpoint.host)
        outcome = self.outcomes[endpoint.host]
        outcome = outcome.pop(0) if isinstance(outcome, list) else outcome
        info.address = "127.0.0.1"
        if isinstance(outcome, Exception):
            raise outcome  # the fakes fail at TCP connect or in the handshake: no TCP latency recorded
        info.tcp_ms = 0.4
        info.tls_ms, info.tls_version, info.cipher = 1.2, "TLSv1.3", "TLS_AES_256_GCM_SHA384"
        info.peer_certificate_der = self.certificate_der
        return outcome


def healthy() -> FakeSession:
    return FakeSession(["1.4", "1.0"], ALL_PSMDB)


def refused(host: str) -> errors.KmipConnectionRefusedError:
    return errors.KmipConnectionRefusedError(f"{host}:5696", "nothing listens on this address and port")


def test_a_healthy_server_is_reported_in_full_and_its_session_kept_open() -> None:
    session = healthy()
    client = FakeClient({"kmip1": session})
    (report,) = probe.probe_all(client)  # type: ignore[arg-type]
    assert report.ok and report.session is session and not session.closed
    result = report.as_result()
    assert result["address"] == "kmip1:5696" and result["attempts"] == 1 and result["error"] is None
    assert result["tls"] == {"ok": True, "latency_ms": 1.2, "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"}
    assert result["certificate"]["subject"] == "CN=kmipops test CA" and result["certificate"]["chain_ok"] is True
    assert result["kmip"]["offers_1_0"] is True and result["kmip"]["psmdb_operations_missing"] == []


def test_servers_are_probed_at_the_same_time() -> None:
    """Each probe waits at a barrier for the other: probed one after the other, the barrier would break."""
    barrier = threading.Barrier(2, timeout=10)
    client = FakeClient({"kmip1": healthy(), "kmip2": healthy()})
    client.before_open = barrier.wait
    reports = probe.probe_all(client)  # type: ignore[arg-type]
    assert [r.ok for r in reports] == [True, True]
    assert [r.endpoint.host for r in reports] == ["kmip1", "kmip2"], "reports keep the order of server_name"


def test_more_passes_only_while_no_server_works() -> None:
    client = FakeClient({"kmip1": [refused("kmip1"), healthy()], "kmip2": [refused("kmip2"), refused("kmip2")]}, 3)
    reports = probe.probe_all(client)  # type: ignore[arg-type]
    assert [(r.ok, r.attempts) for r in reports] == [(True, 2), (False, 2)]
    assert sorted(client.opened) == ["kmip1", "kmip1", "kmip2", "kmip2"], "no third pass once kmip1 worked"


def test_a_server_that_fails_every_pass_reports_the_last_error() -> None:
    client = FakeClient({"kmip1": [refused("kmip1"), refused("kmip1")]}, passes=2)
    (report,) = probe.probe_all(client)  # type: ignore[arg-type]
    assert not report.ok and report.attempts == 2 and report.error_kind == "connection_refused"
    assert report.tcp == {"ok": False, "latency_ms": None} and report.session is None


def test_a_failed_verification_tells_what_is_known_of_the_certificate() -> None:
    error = errors.KmipTlsVerifyError("kmip1:5696", "mismatch", "use another name", "hostname_mismatch")
    (report,) = probe.probe_all(FakeClient({"kmip1": error}))  # type: ignore[arg-type]
    assert report.error_kind == "tls_verify"
    assert report.certificate == {"chain_ok": True, "hostname_match": False, "verify_error": "hostname_mismatch"}


def test_operations_a_server_does_not_offer_are_information() -> None:
    unsupported = errors.KmipOperationNotSupportedError("kmip1:5696", "Query", "Operation Not Supported")
    no_discover = errors.KmipOperationNotSupportedError("kmip1:5696", "Discover Versions", "Operation Not Supported")
    session = FakeSession(no_discover, unsupported)
    (report,) = probe.probe_all(FakeClient({"kmip1": session}))  # type: ignore[arg-type]
    assert report.ok and report.kmip["discover_versions_supported"] is False
    assert report.kmip["query_error"] == "Operation Not Supported" and report.kmip["operations"] is None


def test_a_protocol_error_closes_the_session_and_fails_the_server() -> None:
    session = FakeSession(errors.KmipProtocolError("kmip1:5696", "Discover Versions: truncated"), ALL_PSMDB)
    (report,) = probe.probe_all(FakeClient({"kmip1": session}))  # type: ignore[arg-type]
    assert not report.ok and session.closed and report.error_kind == "kmip_protocol"


def report(host: str, ok: bool = True, **kmip: Any) -> probe.ServerReport:
    result = probe.ServerReport(endpoint=Endpoint(host, 5696), ok=ok, kmip=kmip)
    if not ok:
        result.error = f"KMIP server {host}:5696: connection refused"
    return result


def problems(reports: list[probe.ServerReport], selected: probe.ServerReport | None, version: str = "1.0") -> list:
    return [p.as_result() for p in probe.server_problems(reports, selected, version)]


def test_a_failing_server_is_a_warning_while_another_works_and_an_error_when_none_does() -> None:
    good, bad = report("kmip1"), report("kmip2", ok=False)
    assert [p["severity"] for p in problems([good, bad], good)] == ["warning"]
    assert [p["severity"] for p in problems([bad], None)] == ["error"]


def test_missing_psmdb_operations_are_an_error_only_on_the_selected_server() -> None:
    selected = report("kmip1", psmdb_operations_missing=["Activate"])
    other = report("kmip2", psmdb_operations_missing=["Register"])
    found = problems([selected, other], selected)
    assert [(p["where"], p["severity"]) for p in found] == [("kmip1:5696", "error"), ("kmip2:5696", "warning")]
    assert "Activate" in found[0]["message"]


def test_no_kmip_1_0_and_another_version_are_warnings() -> None:
    selected = report("kmip1", offers_1_0=False)
    found = problems([selected], selected, version="1.2")
    assert [(p["where"], p["severity"]) for p in found] == [("kmip1:5696", "warning"), ("kmip_version", "warning")]


def test_a_server_certificate_about_to_expire_is_a_warning() -> None:
    selected = report("kmip1")
    selected.certificate = {"days_left": probe.EXPIRY_WARNING_DAYS - 1}
    (found,) = problems([selected], selected)
    assert found["severity"] == "warning" and "expires in" in found["message"]
