# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_kmip.probe: every server checked concurrently, failover passes like mongod, the problems reported."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kmip.core import enums
from kmip.core.factories.attributes import AttributeFactory

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import probe as kmip_probe
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KeyMaterialFacts
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
    def __init__(
        self,
        versions: list[str] | Exception,
        operations: list[str] | Exception,
        state_answer: Exception | None = None,
    ) -> None:
        self.versions = versions
        self.operations = operations
        # mongod's first exchange: Get Attributes(State) of an identifier that exists nowhere
        self.state_answer = state_answer or errors.KmipItemNotFoundError(
            "kmip1:5696", "Get Attributes", "Item Not Found"
        )
        self.kmip_version = "1.0"
        self.closed = False

    def get_attributes(self, uid: str, names: list[str]) -> Any:
        raise self.state_answer

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
    (report,) = kmip_probe.probe_all(client)  # type: ignore[arg-type]
    assert report.ok and report.session is session and not session.closed
    result = report.as_result()
    assert result["address"] == "kmip1:5696" and result["attempts"] == 1 and result["error"] is None
    assert result["tls"] == {"ok": True, "latency_ms": 1.2, "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"}
    assert result["certificate"]["subject"] == "CN=kmipops test CA" and result["certificate"]["chain_ok"] is True
    assert result["kmip"]["psmdb_operations_missing"] == []
    assert result["kmip"]["offers_1_0"] is None, "KMIP 1.0 has no Discover Versions: not sent"


def test_servers_are_probed_at_the_same_time() -> None:
    """Each probe waits at a barrier for the other: probed one after the other, the barrier would break."""
    barrier = threading.Barrier(2, timeout=10)
    client = FakeClient({"kmip1": healthy(), "kmip2": healthy()})
    client.before_open = barrier.wait
    reports = kmip_probe.probe_all(client)  # type: ignore[arg-type]
    assert [r.ok for r in reports] == [True, True]
    assert [r.endpoint.host for r in reports] == ["kmip1", "kmip2"], "reports keep the order of server_name"


def test_more_passes_only_while_no_server_works() -> None:
    client = FakeClient({"kmip1": [refused("kmip1"), healthy()], "kmip2": [refused("kmip2"), refused("kmip2")]}, 3)
    reports = kmip_probe.probe_all(client)  # type: ignore[arg-type]
    assert [(r.ok, r.attempts) for r in reports] == [(True, 2), (False, 2)]
    assert sorted(client.opened) == ["kmip1", "kmip1", "kmip2", "kmip2"], "no third pass once kmip1 worked"


def test_a_server_that_fails_every_pass_reports_the_last_error() -> None:
    client = FakeClient({"kmip1": [refused("kmip1"), refused("kmip1")]}, passes=2)
    (report,) = kmip_probe.probe_all(client)  # type: ignore[arg-type]
    assert not report.ok and report.attempts == 2 and report.error_kind == "connection_refused"
    assert report.tcp == {"ok": False, "latency_ms": None} and report.session is None


def test_a_failed_verification_tells_what_is_known_of_the_certificate() -> None:
    error = errors.KmipTlsVerifyError("kmip1:5696", "mismatch", "use another name", "hostname_mismatch")
    (report,) = kmip_probe.probe_all(FakeClient({"kmip1": error}))  # type: ignore[arg-type]
    assert report.error_kind == "tls_verify"
    assert report.certificate == {"chain_ok": True, "hostname_match": False, "verify_error": "hostname_mismatch"}


def test_operations_a_server_does_not_offer_are_information() -> None:
    unsupported = errors.KmipOperationNotSupportedError("kmip1:5696", "Query", "Operation Not Supported")
    no_discover = errors.KmipOperationNotSupportedError("kmip1:5696", "Discover Versions", "Operation Not Supported")
    session = FakeSession(no_discover, unsupported)
    (report,) = kmip_probe.probe_all(FakeClient({"kmip1": session}))  # type: ignore[arg-type]
    assert report.ok and report.kmip["operations"] is None
    assert [d["operation"] for d in report.kmip["declined"]] == ["Query"]


def test_a_protocol_error_closes_the_session_and_fails_the_server() -> None:
    session = FakeSession(ALL_PSMDB, ALL_PSMDB, errors.KmipProtocolError("kmip1:5696", "Get Attributes: truncated"))
    (report,) = kmip_probe.probe_all(FakeClient({"kmip1": session}))  # type: ignore[arg-type]
    assert not report.ok and session.closed and report.error_kind == "kmip_protocol"


def report(host: str, ok: bool = True, **kmip: Any) -> kmip_probe.ServerReport:
    result = kmip_probe.ServerReport(endpoint=Endpoint(host, 5696), ok=ok, kmip=kmip)
    if not ok:
        result.error = f"KMIP server {host}:5696: connection refused"
    return result


def problems(
    reports: list[kmip_probe.ServerReport], selected: kmip_probe.ServerReport | None, version: str = "1.0"
) -> list:
    return [p.as_result() for p in kmip_probe.server_problems(reports, selected, version)]


def test_a_later_server_without_the_selected_servers_key_is_a_warning() -> None:
    # mongod moves on after a timeout but shuts down on Item Not Found (psmdb-kmip.md section 6)
    first, second, down = report("kmip1"), report("kmip2"), report("kmip3", ok=False)
    first.key_found, second.key_found = True, False
    found = {p["where"]: p for p in problems([first, second, down], first)}
    assert sorted(found) == ["kmip2:5696", "kmip3:5696"]  # kmip3: unreachable, its keys unknown
    assert found["kmip2:5696"]["severity"] == "warning"
    assert "Item Not Found" in found["kmip2:5696"]["message"] and "29121" in found["kmip2:5696"]["message"]


def test_servers_that_share_the_key_or_probe_no_key_give_no_spread_warning() -> None:
    first, second = report("kmip1"), report("kmip2")
    first.key_found = second.key_found = True
    assert problems([first, second], first) == []
    assert problems([report("kmip1"), report("kmip2")], None) == []  # no key identifier probed
    missing_everywhere = [report("kmip1"), report("kmip2")]
    for item in missing_everywhere:
        item.key_found = False
    assert problems(missing_everywhere, missing_everywhere[0]) == []  # the selected key check says absent


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
    selected.certificate = {"days_left": kmip_probe.EXPIRY_WARNING_DAYS - 1}
    (found,) = problems([selected], selected)
    assert found["severity"] == "warning" and "expires in" in found["message"]


# -- least-privilege KMS: what makes a server usable, and what is only information --

SERVER = Endpoint("kms.test", 5696)
ALL_OPERATIONS = ["Register", "Activate", "Get", "Get Attributes", "Query", "Locate"]
STATE_ACTIVE = [AttributeFactory().create_attribute(enums.AttributeType.STATE, enums.State.ACTIVE)]
KEY = "k-1"


def denied(operation: str, reason: str = "Permission Denied") -> errors.KmipOperationError:
    error_class = {
        "Permission Denied": errors.KmipPermissionDeniedError,
        "Item Not Found": errors.KmipItemNotFoundError,
        "Operation Not Supported": errors.KmipOperationNotSupportedError,
    }.get(reason, errors.KmipOperationError)
    return error_class(SERVER.label, operation, reason, f"DENIED: {operation}")


class ScriptedSession:
    """Answers each operation from ``answers``: a value, or an exception to raise."""

    def __init__(self, kmip_version: str, answers: dict[str, Any], log: list[str]) -> None:
        self.kmip_version = kmip_version
        self.answers = answers
        self.log = log
        self.closed = False
        self.server = SERVER.label

    def _answer(self, operation: str) -> Any:
        assert not self.closed, f"{operation} sent on a closed session"
        self.log.append(operation)
        answer = self.answers[operation]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def get_attributes(self, uid: str, names: list[str]) -> Any:
        assert names == ["State"]
        self.log.append(f"uid={uid}")
        return self._answer("Get Attributes")

    def query_operations(self) -> Any:
        return self._answer("Query")

    def discover_versions(self) -> Any:
        return self._answer("Discover Versions")

    def get_key_facts(self, uid: str) -> KeyMaterialFacts:
        self._answer("Get")
        return KeyMaterialFacts(uid, "Symmetric Key", "Raw", "AES", 256, 32, False)

    def close(self) -> None:
        self.closed = True


class ScriptedClient:
    passes = 1

    def __init__(self, answers: dict[str, Any], kmip_version: str = "1.0") -> None:
        self.answers = {"Get Attributes": denied("Get Attributes", "Item Not Found"), **answers}
        self.kmip_version = kmip_version
        self.endpoints = [SERVER]
        self.log: list[str] = []
        self.sessions: list[ScriptedSession] = []

    def open(self, endpoint: Endpoint, info: ConnectInfo | None = None) -> ScriptedSession:
        self.log.append("connect")
        session = ScriptedSession(self.kmip_version, self.answers, self.log)
        self.sessions.append(session)
        return session


def probe(client: ScriptedClient, key: str | None = None) -> kmip_probe.ServerReport:
    [report] = kmip_probe.probe_all(client, key)  # type: ignore[arg-type]
    return report


def operations(client: ScriptedClient) -> list[str]:
    return [entry for entry in client.log if not entry.startswith("uid=")]


def test_a_server_that_answers_everything() -> None:
    client = ScriptedClient({"Query": ALL_OPERATIONS})
    report = probe(client)
    assert report.ok and report.session is not None
    assert operations(client) == ["connect", "Get Attributes", "Query"]
    assert report.kmip["mongod_exchange"] == {
        "operation": "Get Attributes",
        "key_identifier": None,
        "result": "Item Not Found",
    }
    assert report.kmip["psmdb_operations_missing"] == [] and report.kmip["declined"] == []
    assert report.kmip["discover_versions_supported"] is None  # never sent with KMIP 1.0
    assert kmip_probe.server_problems([report], report, "1.0") == []
    assert kmip_probe.server_notes([report]) == []


def test_the_identifier_without_a_key_exists_nowhere_and_changes_each_time() -> None:
    client = ScriptedClient({"Query": ALL_OPERATIONS})
    probe(client)
    probe(client)
    first, second = (entry for entry in client.log if entry.startswith("uid="))
    assert first != second and len(first) == len("uid=") + 36


@pytest.mark.parametrize(
    "reason", ["Permission Denied", "Operation Not Supported", "General Failure", "Illegal Operation", "Invalid Field"]
)
def test_a_refused_query_is_a_note_whatever_the_reason(reason: str) -> None:
    report = probe(ScriptedClient({"Query": denied("Query", reason)}))
    assert report.ok and report.error is None and report.session is not None
    assert report.kmip["operations"] is None and report.kmip["psmdb_operations_missing"] is None
    assert report.kmip["declined"] == [{"operation": "Query", "reason": reason, "message": "DENIED: Query"}]
    assert kmip_probe.server_problems([report], report, "1.0") == []
    [note] = kmip_probe.server_notes([report])
    assert note.where == SERVER.label and f"declined Query ({reason})" in note.message
    assert "mongod is not affected" in note.message and "Register and Activate" in note.message


def test_discover_versions_is_only_asked_beyond_kmip_1_0_and_may_be_refused() -> None:
    client = ScriptedClient({"Discover Versions": denied("Discover Versions"), "Query": denied("Query")}, "1.2")
    report = probe(client)
    assert operations(client) == ["connect", "Get Attributes", "Discover Versions", "Query"]
    assert report.ok and report.kmip["discover_versions_supported"] is False
    assert [d["operation"] for d in report.kmip["declined"]] == ["Discover Versions", "Query"]
    assert len(kmip_probe.server_notes([report])) == 2
    answered = probe(ScriptedClient({"Discover Versions": ["1.2", "1.0"], "Query": ALL_OPERATIONS}, "1.2"))
    assert answered.kmip["versions"] == ["1.2", "1.0"] and answered.kmip["offers_1_0"] is True


def test_a_session_ended_by_a_refusal_is_reopened_for_the_key_check() -> None:
    client = ScriptedClient(
        {
            "Get Attributes": STATE_ACTIVE,
            "Query": errors.KmipNetworkError(SERVER.label, "connection closed by the peer"),
            "Get": None,
        }
    )
    report = probe(client, KEY)
    assert report.ok and report.session is None and client.sessions[0].closed
    assert report.kmip["declined"][0]["reason"] is None
    assert "ended the session" in kmip_probe.server_notes([report])[0].message
    check = kmip_probe.check_selected_key(client, report, KEY)  # type: ignore[arg-type]
    assert check.usable and check.state == "Active"
    assert operations(client) == ["connect", "Get Attributes", "Query", "connect", "Get"]


def test_with_a_key_the_probe_is_the_key_check_first_step() -> None:
    client = ScriptedClient({"Get Attributes": STATE_ACTIVE, "Query": denied("Query"), "Get": None})
    report = probe(client, KEY)
    assert report.key_found is True and report.kmip["mongod_exchange"]["key_identifier"] == KEY
    check = kmip_probe.check_selected_key(client, report, KEY)  # type: ignore[arg-type]
    assert check.usable
    # three round trips in one session: Get Attributes(State), Query, Get
    assert operations(client) == ["connect", "Get Attributes", "Query", "Get"]
    assert f"uid={KEY}" in client.log


def test_an_absent_key_is_known_from_the_probe() -> None:
    client = ScriptedClient({"Query": ALL_OPERATIONS})
    report = probe(client, KEY)
    assert report.ok and report.key_found is False
    check = kmip_probe.check_selected_key(client, report, KEY)  # type: ignore[arg-type]
    assert check.exists is False and "absent" in check.problems[0]
    assert operations(client) == ["connect", "Get Attributes", "Query"]


@pytest.mark.parametrize("key", [None, KEY])
@pytest.mark.parametrize(
    ("reason", "kind"), [("Permission Denied", "permission_denied"), ("Operation Not Supported", "not_supported")]
)
def test_a_refused_get_attributes_makes_the_server_unusable(key: str | None, reason: str, kind: str) -> None:
    client = ScriptedClient({"Get Attributes": denied("Get Attributes", reason)})
    report = probe(client, key)
    assert not report.ok and report.error_kind == kind and report.session is None
    assert f"Get Attributes returned {reason}" in (report.error or "")
    assert operations(client) == ["connect", "Get Attributes"]  # nothing else is asked
    assert client.sessions[0].closed
    [problem] = kmip_probe.server_problems([report], None, "1.0")
    assert problem.severity == "error" and reason in problem.message
    assert kmip_probe.server_notes([report]) == []
    if reason == "Permission Denied":
        advice = "operation_get_attributes" if key is None else "only the identity that registered a key"
        assert advice in (report.error or "")


def test_a_made_up_identifier_may_be_refused_for_its_form_but_a_key_may_not() -> None:
    report = probe(
        ScriptedClient({"Get Attributes": denied("Get Attributes", "Invalid Field"), "Query": ALL_OPERATIONS})
    )
    assert report.ok
    [note] = kmip_probe.server_notes([report])
    assert "Invalid Field" in note.message and "key_identifier" in note.message
    keyed = probe(ScriptedClient({"Get Attributes": denied("Get Attributes", "Invalid Field")}), KEY)
    assert not keyed.ok and keyed.error_kind == "kmip_operation"


@pytest.mark.parametrize(
    "failure",
    [
        lambda: errors.KmipTimeoutError(SERVER.label, "no answer"),
        lambda: errors.KmipProtocolError(SERVER.label, "Get Attributes: ValueError: bad TTLV"),
    ],
)
def test_no_answer_to_get_attributes_makes_the_server_unusable(failure: Callable[[], Exception]) -> None:
    report = probe(ScriptedClient({"Get Attributes": failure()}))
    assert not report.ok and report.session is None


def test_a_query_that_lists_no_register_is_still_a_problem() -> None:
    report = probe(ScriptedClient({"Query": ["Get", "Get Attributes", "Activate"]}))
    assert report.ok and report.kmip["psmdb_operations_missing"] == ["Register"]
    [problem] = kmip_probe.server_problems([report], report, "1.0")
    assert problem.severity == "error" and "Register" in problem.message
