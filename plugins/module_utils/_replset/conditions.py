# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""What mongod_replset_info (option ``wait_for``) and mongod_member_stepdown wait for.

Pure predicates over an ``Observation``; every one of them holds only on the PRIMARY's view,
because the set goes by what the primary sees, not by what a restarted member says of itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.observer import Observation
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.view import DATA_STATES

WAIT_FOR_CHOICES = ("none", "member_caught_up", "primary", "set_healthy")


@dataclass(frozen=True)
class Condition:
    """``wait_for`` with its parameters; ``member`` None means the login member's own name."""

    wait_for: str
    member: str | None = None
    not_member: bool = False
    max_lag_seconds: float = 10

    def target(self, observation: Observation) -> str | None:
        return self.member or observation.login_member

    def what(self) -> str:
        member = self.member or "the member at login_host:login_port"
        if self.wait_for == "member_caught_up":
            return f"the primary to see {member} SECONDARY or PRIMARY, healthy, lag <= {self.max_lag_seconds:g}s"
        if self.wait_for == "primary":
            return f"a primary other than {member}" if self.not_member else "a primary"
        if self.wait_for == "set_healthy":
            return f"every member healthy with lag <= {self.max_lag_seconds:g}s, as the primary sees them"
        return "nothing"

    def unmet(self, observation: Observation) -> str | None:
        """Why the condition does not hold on this observation; None when it holds.

        Raises ``InvalidOptionError`` when the primary does not know ``member``: waiting
        longer would not help.
        """
        if self.wait_for == "none":
            return None
        view = observation.view
        if view is None or not view.from_primary:
            return "no primary's view"
        target = self.target(observation)
        if self.wait_for == "member_caught_up" or (self.wait_for == "primary" and self.not_member):
            if target is None:
                return "the name of the member at login_host:login_port is not known yet (it has not answered)"
            if view.member(target) is None:
                raise InvalidOptionError(
                    "member",
                    f"{target} is not a member of replica set {view.set_name} (members: {', '.join(view.names)})",
                )
        if self.wait_for == "member_caught_up":
            m = view.member(target or "")
            if m is None:  # not reached: an unknown member was raised above
                return f"{target} is not a member"
            if not m.health or m.state_str not in DATA_STATES:
                return f"{m.name} is {m.state_str if m.health else 'down'}"
            if m.lag_seconds is None or m.lag_seconds > self.max_lag_seconds:
                return f"{m.name} lag {m.lag_seconds if m.lag_seconds is not None else 'unknown'}"
            return None
        if self.wait_for == "primary":
            if self.not_member and view.primary == target:
                return f"{target} is still the primary"
            return None
        # set_healthy
        if not view.healthy:
            return "not every member is healthy"
        lagging = view.lagging(self.max_lag_seconds)
        if lagging:
            return "lagging: " + ", ".join(m.name for m in lagging)
        return None

    def satisfied(self, observation: Observation) -> bool:
        return self.unmet(observation) is None

    def describe(self, observation: Observation) -> str:
        reason = self.unmet(observation)
        return f"{reason}; {observation.describe()}" if reason else observation.describe()
