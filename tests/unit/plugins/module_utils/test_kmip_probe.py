# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_probe: what makes a server usable, and what is only information (scripted sessions, no network)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kmip.core import enums
from kmip.core.factories.attributes import AttributeFactory

from ansible_collections.kmipops.psmdb.plugins.module_utils import errors, kmip_probe
from ansible_collections.kmipops.psmdb.plugins.module_utils.kmip_client import KeyMaterialFacts
from ansible_collections.kmipops.psmdb.plugins.module_utils.kmip_transport import ConnectInfo, Endpoint

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
