# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_common.errors: one family of typed errors, each with a kind, a message with advice, and safe details."""

from __future__ import annotations

import inspect

from ansible_collections.kmipops.psmdb.plugins.module_utils._common import errors


def error_classes() -> list[type[errors.KmipOpsError]]:
    return [
        cls
        for _name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.KmipOpsError) and cls.__module__ == errors.__name__
    ]


def test_every_error_kind_is_distinct() -> None:
    """``error_kind`` is what playbooks branch on: two classes must never share one."""
    kinds = [cls.kind for cls in error_classes()]
    assert len(kinds) == len(set(kinds)), sorted(kinds)


def test_invalid_option_names_the_option_first() -> None:
    error = errors.InvalidOptionError("connect_timeout_ms", "must be at least 1000")
    assert str(error) == "connect_timeout_ms: must be at least 1000"
    assert (error.kind, error.details()) == ("invalid_option", {"option": "connect_timeout_ms"})


def test_a_server_error_says_where_what_and_what_to_do() -> None:
    error = errors.KmipConnectionRefusedError("kmip1:5696", "nothing listens")
    assert str(error).startswith("KMIP server kmip1:5696: connection refused: nothing listens. Check that")
    assert error.details() == {"server": "kmip1:5696"}
    assert isinstance(error, errors.KmipConnectionError), "mongod would try the next server"


def test_an_operation_error_carries_the_kmip_reason() -> None:
    error = errors.KmipPermissionDeniedError("kmip1:5696", "Get", "Permission Denied", "not owner")
    assert "Get returned Permission Denied (not owner)" in str(error)
    assert error.details() == {"server": "kmip1:5696", "operation": "Get", "kmip_reason": "Permission Denied"}


def test_all_servers_failed_says_each_distinct_failure_once() -> None:
    one = errors.KmipTimeoutError("kmip1:5696", "no answer")
    two = errors.KmipDnsError("kmip2:5696", "Name or service not known")
    error = errors.KmipAllServersFailedError([one, two, one], passes=2)
    assert str(error).count("kmip1:5696") == 1 and "2 pass(es)" in str(error)
    assert [a["error_kind"] for a in error.details()["attempts"]] == ["timeout", "dns", "timeout"]


def test_mongod_errors_name_the_member_like_server_errors_name_the_server() -> None:
    error = errors.MongodCommandError(
        "db1:27017", "replSetStepDown", "No electable secondaries", 262, "ExceededTimeLimit"
    )
    assert str(error) == "mongod db1:27017: replSetStepDown failed: No electable secondaries (ExceededTimeLimit 262)"
    assert error.details() == {
        "member": "db1:27017",
        "command": "replSetStepDown",
        "code": 262,
        "code_name": "ExceededTimeLimit",
    }
    assert errors.MongodAuthError("db1:27017", "Authentication failed.").details() == {"member": "db1:27017"}


def test_a_missing_library_names_the_library_and_the_way_to_install_it() -> None:
    error = errors.MissingDependencyError("pykmip", "No module named 'kmip'", "Traceback ...")
    assert str(error).startswith("the Python library pykmip is required") and "kmip_prereqs" in str(error)
    assert (error.kind, error.import_traceback) == ("missing_dependency", "Traceback ...")
