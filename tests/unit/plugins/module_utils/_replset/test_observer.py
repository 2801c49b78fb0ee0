# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_replset.observer: one poll reads the view FROM THE PRIMARY, through the member or the seeds."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    MongodAuthError,
    MongodCommandError,
    MongodNotReplicaSetError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.observer import ReplsetObserver, split_address
from unit.plugins.module_utils._replset.fakes import Member, ReplicaSet

PARAMS: dict[str, Any] = {
    "login_host": "db2",
    "login_port": 27017,
    "login_user": "admin",
    "login_password": "Sekr1t",
    "login_database": "admin",
    "tls": True,
    "tls_ca_file": "/etc/ca.pem",
    "tls_certificate_key_file": None,
    "tls_certificate_key_file_password": None,
    "tls_allow_invalid_hostnames": False,
    "timeout_ms": 2000,
}


def three(**db2: Any) -> ReplicaSet:
    return ReplicaSet(Member("db1:27017", "PRIMARY"), Member("db2:27017", **db2), Member("db3:27017"))


def observer(rs: ReplicaSet, seeds: list[str] | None = None, **kwargs: Any) -> ReplsetObserver:
    return ReplsetObserver(PARAMS, seeds, connector=rs.connector, **kwargs)


def test_follows_hello_primary_and_reads_the_primary_view() -> None:
    rs = three()
    rs.members["db2:27017"].sees["db3:27017"] = ("(not reachable/healthy)", 0.0, None)  # the secondary's own opinion
    with observer(rs) as obs:
        seen = obs.observe()
    assert seen.from_primary and seen.view is not None and seen.view.source == "db1:27017"
    assert seen.view.member("db3:27017").health is True, "the primary's view, not the member's"  # type: ignore[union-attr]
    assert seen.login_member == "db2:27017" and seen.first_answer == "db2:27017" and seen.self_name == "db2:27017"
    assert seen.view.oplog_window_seconds == 7200.0
    assert "replSetGetStatus" not in rs.members["db2:27017"].calls
    assert rs.members["db1:27017"].calls[:3] == ["hello", "replSetGetStatus", "replSetGetConfig"]


def test_every_member_gets_the_same_credentials_and_tls_options() -> None:
    rs = three()
    seen_params: list[dict[str, Any]] = []

    def connector(params: dict[str, Any]) -> Any:
        seen_params.append(params)
        return rs.connector(params)

    ReplsetObserver(PARAMS, connector=connector).observe()
    assert [(p["login_host"], p["login_port"]) for p in seen_params] == [("db2", 27017), ("db1", 27017)]
    for params in seen_params:
        assert params["login_password"] == "Sekr1t" and params["tls_ca_file"] == "/etc/ca.pem"


def test_the_member_itself_down_the_seeds_answer() -> None:
    rs = three(down=True)
    with observer(rs, ["db3:27017", "db1:27017"]) as obs:
        seen = obs.observe()
        assert seen.from_primary and seen.view is not None
        assert seen.view.member("db2:27017").health is True  # the fake primary thinks so; not the point here
        assert set(seen.unreachable) == {"db2:27017"}
        assert seen.login_member is None and seen.first_answer == "db3:27017" and seen.self_name == "db3:27017"
        rs.connections.clear()
        seen = obs.observe()
    # the next poll starts with the member that answered: no connect timeout lost on the down member
    assert seen.unreachable == {}
    assert "db2:27017" not in rs.connections


def test_the_login_member_name_is_asked_only_when_wanted() -> None:
    rs = three()
    with observer(rs, ["db1:27017"], want_login_member=True) as obs:
        obs.observe()
        rs.members["db2:27017"].calls.clear()
        seen = obs.observe()  # starts with db2 again? no: the one that answered (db2) is preferred
        assert seen.login_member == "db2:27017"
    rs = three(down=True)
    with observer(rs, ["db1:27017"], want_login_member=True) as obs:
        seen = obs.observe()
        assert seen.login_member is None
        rs.members["db2:27017"].down = False
        seen = obs.observe()  # db1 answers first now, then db2 is asked for its name
        assert seen.login_member == "db2:27017" and seen.self_name == "db2:27017"


def test_no_member_answers_is_an_observation_not_an_error() -> None:
    rs = three()
    for m in rs.members.values():
        m.down = True
    seen = observer(rs, ["db1:27017", "db3:27017"]).observe()
    assert seen.view is None and set(seen.unreachable) == {"db1:27017", "db2:27017", "db3:27017"}
    assert "no member answered" in seen.describe() and "Connection refused" in seen.describe()


def test_without_a_primary_the_view_of_the_first_member_that_answered() -> None:
    rs = ReplicaSet(Member("db1:27017", "SECONDARY"), Member("db2:27017"), Member("db3:27017"))
    seen = observer(rs).observe()
    assert seen.view is not None and not seen.from_primary and seen.view.primary is None
    assert seen.view.source == "db2:27017" and "not the primary's view" in seen.describe()


def test_a_primary_that_cannot_be_reached_is_not_the_view() -> None:
    rs = three()
    rs.members["db1:27017"].down = True
    rs.members["db2:27017"].sees["db1:27017"] = ("PRIMARY", 1.0, 0)  # stale: it has not noticed yet
    seen = observer(rs).observe()
    assert seen.view is not None and not seen.from_primary and "db1:27017" in seen.unreachable


def test_wrong_credentials_fail_at_once() -> None:
    with pytest.raises(MongodAuthError):
        observer(three(auth_failed=True)).observe()


def test_a_standalone_is_not_a_replica_set() -> None:
    with pytest.raises(MongodNotReplicaSetError):
        observer(three(set_name=None)).observe()


def test_without_the_oplog_privilege_the_window_is_unknown() -> None:
    rs = three()
    rs.members["db1:27017"].unauthorized.add("find local.oplog.rs")
    seen = observer(rs).observe()
    assert seen.from_primary and seen.view is not None and seen.view.oplog_window_seconds is None


def test_a_young_oplog_is_judged_at_its_capacity() -> None:
    rs = three()
    rs.members["db1:27017"].oplog_stats = {"size": 2**20, "maxSize": 100 * 2**20}
    view = observer(rs).observe().view
    assert view is not None and view.oplog_window_seconds == 7200.0 and view.oplog_fill_ratio == 0.01
    assert view.oplog_capacity_window_seconds == pytest.approx(720000.0)
    assert view.as_result(None)["oplog_capacity_window_seconds"] == pytest.approx(720000.0)


@pytest.mark.parametrize("refusal", ["unauthorized", "failed"])
def test_without_collstats_the_capacity_is_the_window(refusal: str) -> None:
    rs = three()
    if refusal == "unauthorized":
        rs.members["db1:27017"].unauthorized.add("collStats local.oplog.rs")
    else:
        rs.members["db1:27017"].oplog_stats = {"fail": 26}  # NamespaceNotFound: never fails the poll
    view = observer(rs).observe().view
    assert view is not None and view.oplog_fill_ratio is None
    assert view.oplog_capacity_window_seconds == view.oplog_window_seconds == 7200.0


def test_without_replsetgetconfig_the_defaults_apply_other_refusals_fail() -> None:
    rs = three()
    rs.members["db1:27017"].unauthorized.add("replSetGetConfig")
    seen = observer(rs).observe()
    assert seen.view is not None and all(m.votes == 1 for m in seen.view.members)
    rs.members["db1:27017"].unauthorized.add("replSetGetStatus")
    with pytest.raises(MongodCommandError):
        observer(rs).observe()


def test_close_closes_every_client() -> None:
    rs = three()
    clients: list[Any] = []

    def connector(params: dict[str, Any]) -> Any:
        clients.append(rs.connector(params))
        return clients[-1]

    with ReplsetObserver(PARAMS, connector=connector) as obs:
        obs.observe()
    assert clients and all(c.closed for c in clients)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("db1:27018", ("db1", 27018)), ("db1", ("db1", 27017)), ("[::1]:27019", ("::1", 27019)), ("::1", ("::1", 27017))],
)
def test_split_address(text: str, parsed: tuple[str, int]) -> None:
    assert split_address(text) == parsed


@pytest.mark.parametrize("text", ["", ":27017", "db1:port", "db1:70000"])
def test_bad_seeds_are_invalid_options(text: str) -> None:
    with pytest.raises(InvalidOptionError) as raised:
        ReplsetObserver(PARAMS, [text])
    assert raised.value.option == "seeds"
