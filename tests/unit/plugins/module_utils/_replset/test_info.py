# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_replset.info: the returns of mongod_replset_info, with and without a view."""

from __future__ import annotations

from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.info import NO_VIEW, report
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.observer import Observation
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.view import MemberView, ReplsetView


def test_report_without_a_view_has_every_key_and_nulls() -> None:
    result = report(Observation(None, None, "db3:27017", {"db2:27017": "refused"}))
    assert set(result) == set(NO_VIEW) and result["self"] == "db3:27017"
    assert result["members"] == [] and result["healthy"] is False and result["primary"] is None


def test_report_names_the_login_member_as_self() -> None:
    view = ReplsetView(
        "rs0",
        "db1:27017",
        "db1:27017",
        4,
        (MemberView("db1:27017", "PRIMARY", True, 0.0), MemberView("db2:27017", "SECONDARY", True, 1.0)),
    )
    result = report(Observation(view, "db2:27017", "db1:27017"))
    assert result["self"] == "db2:27017" and [m["is_self"] for m in result["members"]] == [False, True]
    assert result["term"] == 4 and result["max_lag_seconds_seen"] == 1.0
