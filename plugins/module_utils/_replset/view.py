# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""A replica set as one member sees it, built from replSetGetStatus and replSetGetConfig.

Pure: documents in, a typed ``ReplsetView`` out, no connection. Which member's view it is
matters: only the primary's view says whether the SET sees a member healthy and caught up
(a restarted member calls itself SECONDARY seconds before the others stop seeing it down).
``ReplsetObserver`` (observer.py) reads the documents from the primary.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass, field
from typing import Any

#: states in which a member counts as up and doing its job
HEALTHY_STATES = ("PRIMARY", "SECONDARY", "ARBITER")
#: states of an up data-bearing member that serves reads and can be elected or sync others
DATA_STATES = ("PRIMARY", "SECONDARY")


@dataclass(frozen=True)
class MemberView:
    """One member as the viewing member sees it, with its configuration."""

    name: str
    state_str: str
    health: bool
    #: seconds its last applied operation is behind the primary's; None when unknown (no primary,
    #: member down, no optime, arbiter)
    lag_seconds: float | None
    priority: float = 1.0
    votes: int = 1
    hidden: bool = False
    arbiter_only: bool = False

    @property
    def healthy(self) -> bool:
        return self.health and self.state_str in HEALTHY_STATES

    @property
    def data_bearing(self) -> bool:
        return not self.arbiter_only

    def as_result(self, self_name: str | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_str": self.state_str,
            "health": self.health,
            "lag_seconds": self.lag_seconds,
            "priority": self.priority,
            "votes": self.votes,
            "hidden": self.hidden,
            "arbiter_only": self.arbiter_only,
            "is_self": self.name == self_name,
        }


@dataclass(frozen=True)
class ReplsetView:
    """The replica set as member ``source`` sees it."""

    set_name: str | None
    #: the member whose replSetGetStatus this is
    source: str | None
    primary: str | None
    term: int | None
    members: tuple[MemberView, ...] = field(default_factory=tuple)
    #: seconds between the first and the last entry of the primary's oplog (None when not read)
    oplog_window_seconds: float | None = None
    #: the primary's oplog size / its maximum size (collStats size / maxSize; None when not read)
    oplog_fill_ratio: float | None = None

    @property
    def oplog_capacity_window_seconds(self) -> float | None:
        return oplog_capacity_window(self.oplog_window_seconds, self.oplog_fill_ratio)

    @property
    def from_primary(self) -> bool:
        """This is the primary's own view, the one the set goes by."""
        return self.source is not None and self.source == self.primary

    def member(self, name: str) -> MemberView | None:
        return next((m for m in self.members if m.name == name), None)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def healthy(self) -> bool:
        """There is a primary and every member is up in PRIMARY, SECONDARY or ARBITER."""
        return bool(self.members) and self.primary is not None and all(m.healthy for m in self.members)

    @property
    def majority_survives_one_down(self) -> bool:
        """A voting majority stays healthy even if ONE more healthy data-bearing member goes
        down, whichever it is (the one with the most votes is the worst case)."""
        total_votes = sum(m.votes for m in self.members)
        if total_votes == 0:
            return False
        majority = total_votes // 2 + 1
        healthy_votes = sum(m.votes for m in self.members if m.healthy)
        worst = max((m.votes for m in self.members if m.healthy and m.data_bearing), default=0)
        return healthy_votes - worst >= majority

    @property
    def max_lag_seconds_seen(self) -> float | None:
        lags = [m.lag_seconds for m in self.members if m.lag_seconds is not None]
        return max(lags) if lags else None

    def lagging(self, max_lag_seconds: float) -> list[MemberView]:
        """Data-bearing members whose lag is unknown or above ``max_lag_seconds``."""
        return [
            m for m in self.members if m.data_bearing and (m.lag_seconds is None or m.lag_seconds > max_lag_seconds)
        ]

    def as_result(self, self_name: str | None) -> dict[str, Any]:
        """The returns of mongod_replset_info (``self_name``: the member the module talked to first)."""
        return {
            "set_name": self.set_name,
            "primary": self.primary,
            "term": self.term,
            "members": [m.as_result(self_name) for m in self.members],
            "self": self_name,
            "healthy": self.healthy,
            "majority_survives_one_down": self.majority_survives_one_down,
            "max_lag_seconds_seen": self.max_lag_seconds_seen,
            "oplog_window_seconds": self.oplog_window_seconds,
            "oplog_fill_ratio": self.oplog_fill_ratio,
            "oplog_capacity_window_seconds": self.oplog_capacity_window_seconds,
        }

    def summary(self) -> str:
        """One line for messages: who is primary and how each member looks from ``source``."""
        parts = []
        for m in self.members:
            state = m.state_str if m.health else f"down ({m.state_str})"
            lag = f", lag {m.lag_seconds:g}s" if m.lag_seconds is not None and m.state_str != "PRIMARY" else ""
            parts.append(f"{m.name} {state}{lag}")
        return f"view of {self.source or '?'} (primary {self.primary or 'none'}): " + "; ".join(parts)


def build_view(
    status: dict[str, Any],
    config: dict[str, Any] | None = None,
    oplog_first_ts: Any = None,
    oplog_last_ts: Any = None,
    oplog_fill_ratio: float | None = None,
) -> ReplsetView:
    """The view in a replSetGetStatus reply, with the settings of replSetGetConfig (its reply or
    its ``config`` document) and the ts of the first and last oplog entries of the primary."""
    raw_members = list(status.get("members") or [])
    settings = _member_settings(config)
    source = next((m.get("name") for m in raw_members if m.get("self")), None)
    primary_raw = _primary(raw_members)
    primary_secs = _optime_seconds(primary_raw) if primary_raw is not None else None
    members = []
    for raw in raw_members:
        name = str(raw.get("name"))
        conf = settings.get(name, {})
        health = bool(raw.get("self")) or _number(raw.get("health")) == 1
        state_str = str(raw.get("stateStr") or "UNKNOWN")
        arbiter = bool(conf.get("arbiterOnly", state_str == "ARBITER"))
        lag: float | None = None
        if primary_secs is not None and health and not arbiter:
            own = _optime_seconds(raw)
            if own is not None:
                lag = max(primary_secs - own, 0.0)
        members.append(
            MemberView(
                name=name,
                state_str=state_str,
                health=health,
                lag_seconds=lag,
                priority=float(conf.get("priority", 0 if arbiter else 1)),
                votes=int(conf.get("votes", 1)),
                hidden=bool(conf.get("hidden", False)),
                arbiter_only=arbiter,
            )
        )
    term = status.get("term")
    if term is None and primary_raw is not None:
        optime = primary_raw.get("optime")
        term = optime.get("t") if isinstance(optime, dict) else None
    return ReplsetView(
        set_name=status.get("set"),
        source=source,
        primary=primary_raw.get("name") if primary_raw is not None else None,
        term=int(term) if isinstance(term, int | float) and term >= 0 else None,
        members=tuple(members),
        oplog_window_seconds=oplog_window(oplog_first_ts, oplog_last_ts),
        oplog_fill_ratio=oplog_fill_ratio,
    )


def oplog_fill(stats: dict[str, Any] | None) -> float | None:
    """size / maxSize of a collStats reply on local.oplog.rs (None when either is missing)."""
    if not stats:
        return None
    size, max_size = _number(stats.get("size")), _number(stats.get("maxSize"))
    if size is None or not max_size or max_size <= 0:
        return None
    return max(size, 0.0) / max_size


def oplog_capacity_window(window: float | None, fill: float | None) -> float | None:
    """How long the oplog keeps an entry at the write rate seen so far: the window itself once
    the oplog is full, else the window grown to the whole size (window / fill). An oplog that is
    not full yet truncates nothing: a young set's short window is its age, not its capacity."""
    if window is None or fill is None or fill >= 1:
        return window
    if fill <= 0 or window <= 0:
        return window  # nothing written yet: no write rate to go by, only what it holds
    return window / fill


def oplog_window(first_ts: Any, last_ts: Any) -> float | None:
    """Seconds between two oplog timestamps (BSON Timestamps), None when one is missing."""
    first, last = _ts_seconds(first_ts), _ts_seconds(last_ts)
    if first is None or last is None:
        return None
    return max(last - first, 0.0)


def _member_settings(config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not config:
        return {}
    doc = config.get("config", config)
    return {str(m.get("host")): m for m in doc.get("members") or []}


def _primary(raw_members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The member seen as PRIMARY; the viewer itself first (it knows best whether it is)."""
    primaries = [
        m for m in raw_members if m.get("stateStr") == "PRIMARY" and (m.get("self") or _number(m.get("health")) == 1)
    ]
    primaries.sort(key=lambda m: not m.get("self"))
    return primaries[0] if primaries else None


def _optime_seconds(raw: dict[str, Any]) -> float | None:
    """When the member's last applied operation happened, in seconds; None when unknown (mongod
    reports Timestamp(0, 0) and 1970 for a member it has not heard from)."""
    optime = raw.get("optime")
    ts = optime.get("ts") if isinstance(optime, dict) else optime
    seconds = _ts_seconds(ts)
    if seconds:
        return seconds
    date = raw.get("optimeDate")
    if isinstance(date, datetime.datetime):
        if date.tzinfo is None:
            value = calendar.timegm(date.utctimetuple()) + date.microsecond / 1e6
        else:
            value = date.timestamp()
        return value if value > 0 else None
    return None


def _ts_seconds(ts: Any) -> float | None:
    """Seconds of a BSON Timestamp (``.time``), or None."""
    seconds = getattr(ts, "time", None)
    if isinstance(seconds, int) and seconds > 0:
        return float(seconds)
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
