"""Replica set: config, heartbeats, Raft-style elections (protocol version 1), oplog fetching, commit point.

Follows mongod's replication coordinator in shape, not in code:

- every member heartbeats every other member each ``settings.heartbeatIntervalMillis``;
- a secondary that has not heard from a primary for ``settings.electionTimeoutMillis`` (plus a random
  offset, as mongod adds) runs a dry-run election, then a real one in term+1; a majority of votes wins;
  priority 0 members never stand; a higher-priority member that is caught up takes over (priority takeover);
- secondaries pull the oplog from their sync source (the primary, else the most advanced member) with a
  long-polling private command, and report their applied optime with every pull; the primary advances
  the majority commit point from those reports (only over entries of its own term, as Raft requires);
- an empty member does a logical initial sync (initial_sync.py), then tails the oplog; a member whose last entry
  fell off every sync source's capped oplog is too stale: it goes RECOVERING (maintenance mode) and stays there;
- a member whose oplog diverged from its sync source rolls back by refetching the documents its
  extra entries touched (mongod's "refetch" rollback); collection drops/creates are not undone.

All state lives under the node's lock; network calls are made without holding it.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from bson.binary import Binary
from bson.int64 import Int64
from bson.timestamp import Timestamp

from .catalog import LOCAL_DB, OPLOG, id_key
from .errors import CommandError
from .initial_sync import InitialSyncer, initial_sync_flag
from .metrics import ElectionMetrics
from .peer import PeerClient, PeerError

if TYPE_CHECKING:
    from .node import Node

STARTUP, PRIMARY, SECONDARY, RECOVERING, STARTUP2, UNKNOWN, ARBITER, DOWN, ROLLBACK, REMOVED = (
    0,
    1,
    2,
    3,
    5,
    6,
    7,
    8,
    9,
    10,
)
STATE_NAMES = {
    STARTUP: "STARTUP",
    PRIMARY: "PRIMARY",
    SECONDARY: "SECONDARY",
    RECOVERING: "RECOVERING",
    STARTUP2: "STARTUP2",
    UNKNOWN: "UNKNOWN",
    ARBITER: "ARBITER",
    DOWN: "DOWN",
    ROLLBACK: "ROLLBACK",
    REMOVED: "REMOVED",
}
NULL_OPTIME: dict[str, Any] = {"ts": Timestamp(0, 0), "t": -1}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
CONFIG_COLLECTION = "system.replset"
ELECTION_COLLECTION = "replset.election"
FETCH_BATCH = 500
_PRIORITY_TAKEOVER_FRESHNESS_SECS = 2  # mongod's priorityTakeoverFreshnessWindowSeconds
# BackgroundSync: a member that finds no sync source (e.g. right after a restart, before any heartbeat
# told it who is primary) tries again after a second.
_NO_SYNC_SOURCE_RETRY_SECS = 1.0
_SHUTDOWN_STEPDOWN_SECS = 24 * 3600.0  # stepDownForShutdown freezes the node for a day (Days(1))
# SyncSourceResolver (sync_source_resolver.cpp): kFetcherTimeout 30 s, kFetcherErrorDenylistDuration 10 s,
# kTooStaleDenylistDuration 1 min.
_RESOLVER_TIMEOUT_SECS = 30.0
_FETCHER_ERROR_DENYLIST_SECS = 10.0
_TOO_STALE_DENYLIST_SECS = 60.0

DEFAULT_SETTINGS: dict[str, Any] = {
    "chainingAllowed": True,
    "heartbeatIntervalMillis": 2000,
    "heartbeatTimeoutSecs": 10,
    "electionTimeoutMillis": 10000,
    "catchUpTimeoutMillis": -1,
    "catchUpTakeoverDelayMillis": 30000,
    "getLastErrorModes": {},
    "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
}
DEFAULT_MEMBER: dict[str, Any] = {
    "arbiterOnly": False,
    "buildIndexes": True,
    "hidden": False,
    "priority": 1.0,
    "tags": {},
    "secondaryDelaySecs": 0,
    "votes": 1,
}


def optime_key(optime: dict[str, Any]) -> tuple[int, int, int]:
    """mongod orders optimes by term, then timestamp."""
    return (int(optime["t"]), optime["ts"].time, optime["ts"].inc)


def optime_of(entry: dict[str, Any] | None) -> dict[str, Any]:
    return {"ts": entry["ts"], "t": entry["t"]} if entry else dict(NULL_OPTIME)


def config_newer(version_a: int, term_a: int, version_b: int, term_b: int) -> bool:
    """ConfigVersionAndTerm ordering: term first, then version; a term of -1 (force reconfig) compares
    versions only."""
    if term_a == -1 or term_b == -1:
        return version_a > version_b
    return (term_a, version_a) > (term_b, version_b)


def ts_datetime(ts: Timestamp) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts.time, datetime.UTC)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def normalize_config(config: dict[str, Any], version: int | None = None, term: int | None = None) -> dict[str, Any]:
    """Validates a replSetInitiate/replSetReconfig document and fills in mongod's defaults."""
    if not isinstance(config, dict) or not isinstance(config.get("_id"), str):
        raise CommandError(93, "replica set configuration must have a string _id")
    members = config.get("members")
    if not isinstance(members, list) or not members:
        raise CommandError(93, "replica set configuration must have a non-empty members array")
    seen_ids: set[int] = set()
    seen_hosts: set[str] = set()
    normalized_members = []
    for raw in members:
        member = {**DEFAULT_MEMBER, **raw}
        if not isinstance(member.get("_id"), int) or not isinstance(member.get("host"), str):
            raise CommandError(93, "each member needs an integer _id and a host string")
        host = member["host"] if ":" in member["host"] else f"{member['host']}:27017"
        member["host"] = host
        if member["_id"] in seen_ids or host in seen_hosts:
            raise CommandError(93, f"duplicate member _id or host in replica set configuration: {raw}")
        seen_ids.add(member["_id"])
        seen_hosts.add(host)
        member["priority"] = float(member["priority"])
        member["votes"] = int(member["votes"])
        if member["votes"] not in (0, 1):
            raise CommandError(93, "votes must be 0 or 1")
        if member["votes"] == 0 and member["priority"] > 0:
            raise CommandError(93, "priority must be 0 when non-voting (votes:0)")
        if (member["hidden"] or member["arbiterOnly"]) and member["priority"] > 0:
            raise CommandError(93, "priority must be 0 when hidden or arbiterOnly")
        normalized_members.append(member)
    if not any(m["votes"] for m in normalized_members):
        raise CommandError(93, "replica set configuration must contain at least one voting member")
    settings = {**DEFAULT_SETTINGS, **config.get("settings", {})}
    for name in ("heartbeatIntervalMillis", "electionTimeoutMillis", "heartbeatTimeoutSecs"):
        if int(settings[name]) <= 0:
            raise CommandError(93, f"settings.{name} must be positive")
    settings.setdefault("replicaSetId", ObjectId())
    return {
        "_id": config["_id"],
        "version": int(version if version is not None else config.get("version", 1)),
        "term": int(term if term is not None else config.get("term", 0)),
        "protocolVersion": 1,
        "writeConcernMajorityJournalDefault": bool(config.get("writeConcernMajorityJournalDefault", True)),
        "members": normalized_members,
        "settings": settings,
        **({"configsvr": True} if config.get("configsvr") else {}),
    }


@dataclass
class MemberView:
    """What this node knows about another member, from heartbeats both ways."""

    health: bool = False
    state: int = UNKNOWN
    term: int = -1
    applied: dict[str, Any] = field(default_factory=lambda: dict(NULL_OPTIME))
    applied_wall: datetime.datetime = EPOCH
    durable: dict[str, Any] = field(default_factory=lambda: dict(NULL_OPTIME))
    durable_wall: datetime.datetime = EPOCH
    last_heartbeat: datetime.datetime | None = None
    last_heartbeat_recv: datetime.datetime | None = None
    last_heartbeat_message: str = ""
    last_contact: float = 0.0  # monotonic time of the last successful exchange in either direction
    ping_ms: int = 0
    pings: int = 0  # successful heartbeats (mongod's PingStats count)
    up_since: float | None = None
    election_time: Timestamp | None = None
    sync_source: str = ""
    config_version: int = -2
    config_term: int = -1


class ReplicaSet:
    def __init__(self, node: Node, set_name: str) -> None:
        self.node = node
        self.set_name = set_name
        self.config: dict[str, Any] | None = None
        self.self_id: int | None = None
        self.state = STARTUP
        self.term = 0
        self.voted_for: tuple[int, int] | None = None  # (term, candidate member _id)
        self.views: dict[int, MemberView] = {}
        self.positions: dict[int, dict[str, Any]] = {}  # durable optimes reported by secondaries (primary side)
        self.progress: dict[int, dict[str, Any]] = {}  # their applied/durable optimes and wall times (primary side)
        self.commit_point: dict[str, Any] = dict(NULL_OPTIME)
        self.commit_point_wall: datetime.datetime = EPOCH
        self.election_time: Timestamp | None = None
        self.election_date: datetime.datetime | None = None
        self.sync_source: str = ""
        self.stepping_down = False
        self.stepdown_until = 0.0
        self.frozen_until = 0.0
        self.terminal_shutdown = False  # enterTerminalShutdown: this node never stands again
        self.initial_syncer: InitialSyncer | None = None  # while the member needs an initial sync (STARTUP2)
        self.too_stale = False  # BackgroundSync::_tooStale: every sync source is too far ahead (RECOVERING)
        self._denylist: dict[str, float] = {}  # sync source host -> monotonic time until which it is not used
        self.maintenance_calls = 0  # replSetMaintenance: RECOVERING while > 0
        self.metrics = ElectionMetrics()
        self._noop_last_known: dict[str, Any] | None = None
        self.last_primary_contact = time.monotonic()
        self._election_deadline = self._new_election_deadline()
        self._takeover_since: float | None = None
        self._stop = threading.Event()
        # host -> (thread, stop, wake): setting ``wake`` makes the thread heartbeat that member at once.
        self._heartbeat_threads: dict[str, tuple[threading.Thread, threading.Event, threading.Event]] = {}
        self._threads: list[threading.Thread] = []
        self._sync_client: PeerClient | None = None

    # -- helpers over the config (callers hold the lock) -------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return (self.config or {}).get("settings", DEFAULT_SETTINGS)

    @property
    def heartbeat_interval(self) -> float:
        return int(self.settings["heartbeatIntervalMillis"]) / 1000

    @property
    def election_timeout(self) -> float:
        return int(self.settings["electionTimeoutMillis"]) / 1000

    @property
    def heartbeat_timeout(self) -> float:
        return float(self.settings["heartbeatTimeoutSecs"])

    def members(self) -> list[dict[str, Any]]:
        return list((self.config or {}).get("members", []))

    def member(self, member_id: int | None) -> dict[str, Any] | None:
        return next((m for m in self.members() if m["_id"] == member_id), None)

    def member_by_host(self, host: str) -> dict[str, Any] | None:
        return next((m for m in self.members() if m["host"] == host), None)

    @property
    def me(self) -> dict[str, Any] | None:
        return self.member(self.self_id)

    def others(self) -> list[dict[str, Any]]:
        return [m for m in self.members() if m["_id"] != self.self_id]

    def voters(self) -> list[dict[str, Any]]:
        return [m for m in self.members() if m["votes"]]

    def majority(self) -> int:
        return len(self.voters()) // 2 + 1

    def _new_election_deadline(self, after_lost_election: bool = False) -> float:
        timeout = self.election_timeout if self.config else 10.0
        # mongod randomises the election timeout by up to 15% so members do not all stand at once; after a
        # lost (split) election the candidate backs off by up to a whole timeout more (Raft), so that on a
        # slow machine, where an election takes long, the candidates do not keep colliding.
        spread = timeout if after_lost_election else timeout * 0.15
        return time.monotonic() + timeout + random.uniform(0, spread)

    def applied(self) -> dict[str, Any]:
        return optime_of(self.node.catalog.oplog[-1] if self.node.catalog.oplog else None)

    def primary_member(self) -> dict[str, Any] | None:
        if self.state == PRIMARY:
            return self.me
        candidates = [
            (view.term, member_id)
            for member_id, view in self.views.items()
            if view.health and view.state == PRIMARY and view.term >= self.term
        ]
        return self.member(max(candidates)[1]) if candidates else None

    def is_electable(self) -> bool:
        me = self.me
        now = time.monotonic()
        return (
            me is not None
            and self.state == SECONDARY
            and me["priority"] > 0
            and me["votes"] > 0
            and now >= self.frozen_until
            and now >= self.stepdown_until
            and not self.terminal_shutdown
            and not self.node.in_quiesce
        )

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Loads the persisted config and term (after a restart) and starts the background loops."""
        with self.node.lock:
            stored = self.node.catalog.documents(LOCAL_DB, CONFIG_COLLECTION)
            election = self.node.catalog.documents(LOCAL_DB, ELECTION_COLLECTION)
            if election:
                self.term = int(election[0]["term"])
                if election[0].get("votedFor") is not None:
                    self.voted_for = (self.term, int(election[0]["votedFor"]))
            if stored:
                self._install_config(stored[0], persist=False)
        loops = (
            (self._coordinator_loop, "ReplCoord"),
            (self._sync_loop, "OplogFetcher"),
            (self._noop_loop, "NoopWriter"),
        )
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self.node.lock:
            for _thread, stop, wake in self._heartbeat_threads.values():
                stop.set()
                wake.set()
            self.node.changed.notify_all()
        for thread in [*self._threads, *(t for t, _s, _w in self._heartbeat_threads.values())]:
            thread.join(timeout=5)
        if self._sync_client is not None:
            self._sync_client.close()

    def _set_state(self, new_state: int) -> None:
        if new_state == self.state:
            return
        old_state = self.state
        self.state = new_state
        self.node.logger.log(
            "I",
            "REPL",
            21358,
            "Replica set state transition",
            {"newState": STATE_NAMES[new_state], "oldState": STATE_NAMES[old_state]},
        )
        self.node.bump_topology()

    def _persist_election_state(self) -> None:
        voted = self.voted_for[1] if self.voted_for and self.voted_for[0] == self.term else None
        self.node.catalog.replace(
            LOCAL_DB, ELECTION_COLLECTION, {"_id": "election", "term": self.term, "votedFor": voted}
        )
        # Raft: the term and vote must be durable before they are acted upon (waiting releases the lock).
        self.node.wait_durable(self.node.catalog.generation)

    def update_term(self, term: int, reason: str) -> None:
        """Adopts a higher term seen anywhere; a primary that sees one steps down (Raft)."""
        if term <= self.term:
            return
        self.term = term
        # Someone else is campaigning or leading in this term: give them an election timeout.
        self._election_deadline = self._new_election_deadline()
        self._persist_election_state()
        if self.state == PRIMARY:
            self._step_down_locked(f"higher term seen: {reason}", caused_by_higher_term=True)

    def _step_down_locked(self, reason: str, caused_by_higher_term: bool = False) -> None:
        self.node.logger.log("I", "REPL", 21809, "Stepping down from primary", {"reason": reason, "term": self.term})
        self.election_time = None
        self.election_date = None
        self.positions.clear()
        self.progress.clear()
        self.stepping_down = False
        self.metrics.stepped_down(caused_by_higher_term)
        self._set_state(SECONDARY)
        self.last_primary_contact = time.monotonic()
        self._election_deadline = self._new_election_deadline()
        self.node.changed.notify_all()

    # -- config --------------------------------------------------------------------------------------------------
    def _find_self(self, config: dict[str, Any]) -> int | None:
        matches = [m["_id"] for m in config["members"] if self.node.is_self_host(m["host"])]
        return matches[0] if len(matches) == 1 else None

    def _install_config(self, config: dict[str, Any], persist: bool = True) -> None:
        self.config = config
        self.self_id = self._find_self(config)
        known = {m["_id"] for m in config["members"]}
        self.views = {k: v for k, v in self.views.items() if k in known}
        for member in self.others():
            self.views.setdefault(member["_id"], MemberView())
        if persist:
            self.node.catalog.ensure_collection(LOCAL_DB, CONFIG_COLLECTION)
            for doc in self.node.catalog.documents(LOCAL_DB, CONFIG_COLLECTION):
                self.node.catalog.delete(LOCAL_DB, CONFIG_COLLECTION, doc["_id"])
            self.node.catalog.insert(LOCAL_DB, CONFIG_COLLECTION, config)
        if self.self_id is None:
            self._set_state(REMOVED)
        elif self.state in (STARTUP, REMOVED):
            # Once its config is loaded a member enters STARTUP2; with data it needs no initial sync, goes
            # RECOVERING and, its own last applied entry being its minValid, SECONDARY.
            self._set_state(STARTUP2)
            if self.node.catalog.oplog and not initial_sync_flag(self.node):
                self._go_live_as_secondary()
            else:  # empty, or an interrupted initial sync: the initial syncer starts (again) from scratch
                self.initial_syncer = InitialSyncer(self)
        self.node.logger.log("I", "REPL", 21392, "New replica set config in use", {"config": config})
        self._election_deadline = self._new_election_deadline()
        self._sync_heartbeat_threads()
        self.node.bump_topology()

    def _sync_heartbeat_threads(self) -> None:
        wanted = {m["host"] for m in self.others()} if self.self_id is not None else set()
        for host in list(self._heartbeat_threads):
            if host not in wanted:
                _thread, stop, wake = self._heartbeat_threads.pop(host)
                stop.set()
                wake.set()
        for host in wanted - set(self._heartbeat_threads):
            stop, wake = threading.Event(), threading.Event()
            thread = threading.Thread(
                target=self._heartbeat_loop, args=(host, stop, wake), name=f"Heartbeat-{host}", daemon=True
            )
            self._heartbeat_threads[host] = (thread, stop, wake)
            thread.start()

    def _go_live_as_secondary(self) -> None:
        """STARTUP2 -> RECOVERING -> SECONDARY (maintenance mode keeps the member RECOVERING)."""
        self._set_state(RECOVERING)
        if self.maintenance_calls == 0:
            self._set_state(SECONDARY)

    def initiate(self, raw_config: dict[str, Any] | None) -> None:
        with self.node.lock:
            if self.config is not None:
                raise CommandError(23, "already initialized")
            if self.node.catalog.database_names() != [LOCAL_DB] and any(
                name not in ("admin", "config", LOCAL_DB) for name in self.node.catalog.database_names()
            ):
                raise CommandError(93, "a node with data cannot be initiated into a replica set")
            if raw_config is None:
                raw_config = {"_id": self.set_name, "members": [{"_id": 0, "host": self.node.default_host()}]}
            config = normalize_config(raw_config, version=1, term=0)
            if config["_id"] != self.set_name:
                raise CommandError(
                    93,
                    f"Attempting to initiate a replica set with name {config['_id']}, but command line "
                    f"reports {self.set_name}; rejecting",
                )
            if self._find_self(config) is None:
                raise CommandError(
                    93, "No host described in new configuration with {version: 1, term: 0} maps to this node"
                )
            self._check_cluster_role(config)
        self._check_members_reachable(config)
        with self.node.lock:
            if self.config is not None:
                raise CommandError(23, "already initialized")
            self.node.log_op({"op": "n", "ns": "", "o": {"msg": "initiating set"}}, term=self.term)
            self._install_config(config)

    def _check_cluster_role(self, config: dict[str, Any]) -> None:
        """A config server's set must say ``configsvr: true``, and only config servers may (BadValue, as
        mongod's config validation)."""
        is_config_server = self.node.settings.cluster_role == "configsvr"
        if is_config_server and not config.get("configsvr"):
            raise CommandError(2, "Nodes started with the --configsvr flag must have configsvr:true in their config")
        if config.get("configsvr") and not is_config_server:
            raise CommandError(2, "Nodes being used for config servers must be started with the --configsvr flag")

    def _check_members_reachable(self, config: dict[str, Any]) -> None:
        """mongod refuses to initiate unless every other member answers a heartbeat and has no config."""
        for member in config["members"]:
            if self.node.is_self_host(member["host"]):
                continue
            client = self.node.new_peer_client(member["host"])
            try:
                reply = client.command(
                    "admin",
                    {"replSetHeartbeat": config["_id"], "configVersion": -2, "checkEmpty": True, "hbv": 1},
                    timeout=5,
                )
            except PeerError as exc:
                raise CommandError(
                    74,
                    f"replSetInitiate quorum check failed because not all proposed set members "
                    f"responded affirmatively: {member['host']} failed with {exc}",
                ) from exc
            finally:
                client.close()
            if reply.get("configVersion", -2) != -2:
                raise CommandError(74, f"{member['host']} already has a replica set configuration")

    def reconfig(self, raw_config: dict[str, Any], force: bool) -> None:
        with self.node.lock:
            if self.config is None:
                raise CommandError(94, "no replset config has been received")
            if self.state != PRIMARY and not force:
                raise CommandError(10107, "replSetReconfig should only be run on a writable PRIMARY")
            version = int(raw_config.get("version", 0))
            if not force and version <= self.config["version"]:
                raise CommandError(
                    103,
                    f"New config version {version} must be greater than the current version {self.config['version']}",
                )
            if raw_config.get("_id") != self.set_name:
                raise CommandError(93, "the replica set name cannot change")
            new_version = version if not force else max(version, self.config["version"] + random.randint(10000, 100000))
            config = normalize_config(
                {**raw_config, "settings": {**self.settings, **raw_config.get("settings", {})}},
                version=new_version,
                term=self.term if not force else -1,
            )
            if self._find_self(config) is None:
                raise CommandError(74, "the new configuration does not include this node")
            self._check_cluster_role(config)
            self._install_config(config)
            if self.state == PRIMARY:
                self.node.log_op({"op": "n", "ns": "", "o": {"msg": "Reconfig set", "version": config["version"]}})

    # -- heartbeats ----------------------------------------------------------------------------------------------
    def heartbeat_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answers replSetHeartbeat from another member (called with the lock held)."""
        if request.get("replSetHeartbeat") != self.set_name:
            raise CommandError(93, "Our replica set name did not match that of the request")
        sender = request.get("from", "")
        member = self.member_by_host(sender) if sender else None
        if member is not None and member["_id"] in self.views:
            view = self.views[member["_id"]]
            view.last_heartbeat_recv = utcnow()
            view.last_contact = time.monotonic()
            if not view.health:
                # A member we think is down is talking to us: heartbeat it now rather than at the next interval.
                self._wake_heartbeat(member["host"])
        if int(request.get("term", -1)) > self.term:
            self.update_term(int(request["term"]), f"heartbeat from {sender}")
        my_version = self.config["version"] if self.config else -2
        my_config_term = self.config["term"] if self.config else -1
        their_version = int(request.get("configVersion", -2))
        their_config_term = int(request.get("configTerm", -1))
        if sender and config_newer(their_version, their_config_term, my_version, my_config_term):
            # Learn the newer config by asking the sender for it, off the request thread.
            threading.Thread(target=self._fetch_config_from, args=(sender,), name="ConfigFetch", daemon=True).start()
        durable, durable_wall = self.node.durable()
        reply: dict[str, Any] = {
            "ok": 1.0,
            "set": self.set_name,
            "state": self.state,
            "term": self.term,
            "configVersion": my_version,
            "configTerm": my_config_term,
            # The member's last applied and durable oplog entries with their wall times, never "now".
            "opTime": self.applied(),
            "wallTime": self.node.last_applied_wall(),
            "durableOpTime": durable,
            "durableWallTime": durable_wall,
            "syncingTo": self.sync_source,
            "commitPoint": self.commit_point,
        }
        if self.state == PRIMARY and self.election_time is not None:
            reply["electionTime"] = self.election_time
        if self.config is not None and config_newer(my_version, my_config_term, their_version, their_config_term):
            reply["config"] = self.config
        return reply

    def _wake_heartbeat(self, host: str) -> None:
        entry = self._heartbeat_threads.get(host)
        if entry is not None:
            entry[2].set()

    def _fetch_config_from(self, host: str) -> None:
        client = self.node.new_peer_client(host)
        try:
            reply = client.command(
                "admin", {"replSetHeartbeat": self.set_name, "configVersion": -2, "hbv": 1}, timeout=5
            )
        except PeerError:
            return
        finally:
            client.close()
        with self.node.lock:
            config = reply.get("config")
            if config and self._is_newer_config(config):
                self._install_config(config)

    def _is_newer_config(self, config: dict[str, Any]) -> bool:
        if self.config is None:
            return True
        return config_newer(
            int(config["version"]), int(config.get("term", -1)), self.config["version"], self.config["term"]
        )

    def _heartbeat_loop(self, host: str, stop: threading.Event, wake: threading.Event) -> None:
        client = self.node.new_peer_client(host)
        try:
            while not stop.is_set() and not self._stop.is_set():
                with self.node.lock:
                    member = self.member_by_host(host)
                    if member is None or self.config is None:
                        return
                    request = {
                        "replSetHeartbeat": self.set_name,
                        "configVersion": self.config["version"],
                        "configTerm": self.config["term"],
                        "hbv": 1,
                        "from": self.me["host"] if self.me else "",
                        "fromId": self.self_id,
                        "term": self.term,
                    }
                    interval, timeout = self.heartbeat_interval, self.heartbeat_timeout
                started = time.monotonic()
                try:
                    reply: dict[str, Any] | None = client.command("admin", request, timeout=timeout)
                    error = ""
                except PeerError as exc:
                    reply, error = None, str(exc)
                with self.node.lock:
                    self._process_heartbeat_reply(member["_id"], reply, error, time.monotonic() - started)
                wake.wait(max(0.0, interval - (time.monotonic() - started)))
                wake.clear()
        finally:
            client.close()

    def _process_heartbeat_reply(
        self, member_id: int, reply: dict[str, Any] | None, error: str, elapsed: float
    ) -> None:
        view = self.views.get(member_id)
        if view is None:
            return
        view.last_heartbeat = utcnow()
        if reply is None:
            if view.health:
                self.node.logger.log(
                    "I", "REPL", 21215, "Member is now in state RS_DOWN", {"member": member_id, "error": error}
                )
                self.node.bump_topology()
            view.health = False
            view.state = DOWN
            view.up_since = None
            view.ping_ms = 0
            view.last_heartbeat_message = error
            view.applied, view.applied_wall = dict(NULL_OPTIME), EPOCH
            view.durable, view.durable_wall = dict(NULL_OPTIME), EPOCH
            return
        was_state = view.state
        view.health = True
        view.state = int(reply.get("state", UNKNOWN))
        view.term = int(reply.get("term", -1))
        view.applied = reply.get("opTime", dict(NULL_OPTIME))
        view.applied_wall = reply.get("wallTime", EPOCH)
        view.durable = reply.get("durableOpTime", dict(NULL_OPTIME))
        view.durable_wall = reply.get("durableWallTime", EPOCH)
        view.election_time = reply.get("electionTime")
        view.sync_source = reply.get("syncingTo", "")
        view.config_version = int(reply.get("configVersion", -2))
        view.config_term = int(reply.get("configTerm", -1))
        view.ping_ms = int(elapsed * 1000)
        view.pings += 1
        view.last_contact = time.monotonic()
        view.last_heartbeat_message = ""
        if view.up_since is None:
            view.up_since = time.monotonic()
        if was_state != view.state:
            self.node.logger.log(
                "I",
                "REPL",
                21216,
                "Member is in new state",
                {"member": member_id, "state": STATE_NAMES.get(view.state)},
            )
        if view.term > self.term:
            self.update_term(view.term, f"heartbeat reply from member {member_id}")
        if view.state == PRIMARY and view.term >= self.term:
            self.last_primary_contact = time.monotonic()
            self._election_deadline = self._new_election_deadline()
        if self.state == PRIMARY:
            self._record_position(member_id, view.durable)
        config = reply.get("config")
        if config and self.config and self._is_newer_config(config):
            self._install_config(config)

    # -- elections -----------------------------------------------------------------------------------------------
    def _coordinator_loop(self) -> None:
        while not self._stop.is_set():
            with self.node.lock:
                tick = min(0.1, self.heartbeat_interval / 4) if self.config else 0.2
                reason = self._election_reason()
                if self.state == PRIMARY:
                    self._check_primary_liveness()
            if reason:
                self.run_election(reason)
            self._stop.wait(tick)

    def _election_reason(self) -> str | None:
        if self.config is None or not self.is_electable():
            self._takeover_since = None
            return None
        now = time.monotonic()
        primary = self.primary_member()
        if primary is None:
            voters = self.voters()
            if len(voters) == 1 and voters[0]["_id"] == self.self_id:
                return "singleNodePromptElection"  # the only voter stands at once (kActionStartSingleNodeElection)
            if now >= self._election_deadline:
                return "electionTimeout"
            return None
        # Priority takeover: a caught-up member with a higher priority than the primary stands after a delay.
        me = self.me
        assert me is not None
        primary_view = self.views.get(primary["_id"])
        if primary_view and me["priority"] > primary["priority"]:
            lag = primary_view.applied["ts"].time - self.applied()["ts"].time
            if lag <= _PRIORITY_TAKEOVER_FRESHNESS_SECS:
                if self._takeover_since is None:
                    self._takeover_since = now
                elif now - self._takeover_since >= self.election_timeout:
                    self._takeover_since = None
                    return "priorityTakeover"
                return None
        self._takeover_since = None
        return None

    def _check_primary_liveness(self) -> None:
        """A primary that cannot see a majority of voters for an election timeout steps down."""
        now = time.monotonic()
        visible = 1 if (self.me or {}).get("votes") else 0
        for member in self.others():
            view = self.views.get(member["_id"])
            if member["votes"] and view and now - view.last_contact <= self.election_timeout:
                visible += 1
        if visible < self.majority():
            self._step_down_locked("can't see a majority of the set, relinquishing primary")

    def run_election(self, reason: str, skip_dry_run: bool = False) -> bool:
        with self.node.lock:
            if not self.is_electable() or self.config is None:
                return False
            self._election_deadline = self._new_election_deadline()
            me = self.me
            assert me is not None
            self.node.logger.log("I", "ELECTION", 21438, "Starting an election", {"reason": reason, "term": self.term})
            base_request = {
                "replSetRequestVotes": 1,
                "setName": self.set_name,
                "candidateIndex": self.self_id,
                "configVersion": self.config["version"],
                "configTerm": self.config["term"],
                "lastAppliedOpTime": self.applied(),
            }
            hosts = [m["host"] for m in self.others() if m["votes"]]
            majority = self.majority()
            term = self.term
            prior_primary = self.primary_member()
            details: dict[str, Any] = {
                "lastElectionDate": utcnow(),
                "electionTerm": Int64(term + 1),
                "lastCommittedOpTimeAtElection": self.commit_point,
                "lastSeenOpTimeAtElection": self.applied(),
                "numVotesNeeded": majority,
                "priorityAtElection": float(me["priority"]),
                "electionTimeoutMillis": Int64(int(self.settings["electionTimeoutMillis"])),
            }
            if prior_primary is not None:
                details["priorPrimaryMemberId"] = prior_primary["_id"]
            self.metrics.election_called(reason, details)
        if not skip_dry_run:
            votes = 1 + self._collect_votes(hosts, {**base_request, "term": term + 1, "dryRun": True}, majority - 1)
            if votes < majority:
                self.node.logger.log("I", "ELECTION", 21435, "Not running for primary, dry run lost", {"votes": votes})
                with self.node.lock:
                    self._election_deadline = self._new_election_deadline(after_lost_election=True)
                    self.metrics.election_lost()
                return False
        with self.node.lock:
            if self.term != term or not self.is_electable():
                self.metrics.election_lost()
                return False
            self.term += 1
            term = self.term
            self.voted_for = (term, self.self_id or 0)
            self._persist_election_state()
            if self.term != term:
                return False  # a higher term arrived while the vote was being made durable
        votes = 1 + self._collect_votes(hosts, {**base_request, "term": term, "dryRun": False}, majority - 1)
        with self.node.lock:
            if votes < majority or self.term != term or self.state != SECONDARY:
                self.node.logger.log(
                    "I",
                    "ELECTION",
                    21446,
                    "Lost election",
                    {"term": term, "votes": votes, "currentTerm": self.term, "state": STATE_NAMES[self.state]},
                )
                self._election_deadline = self._new_election_deadline(after_lost_election=True)
                self.metrics.election_lost()
                return False
            self._become_primary(reason)
        return True

    def _collect_votes(self, hosts: list[str], request: dict[str, Any], needed: int) -> int:
        """Asks every voter in parallel; returns as soon as ``needed`` votes are granted or all have answered."""
        tally = {"granted": 0, "answered": 0}
        done = threading.Condition()

        def ask(host: str) -> None:
            client = self.node.new_peer_client(host)
            reply: dict[str, Any] = {}
            try:
                reply = client.command("admin", request, timeout=self.heartbeat_timeout)
            except PeerError:
                pass
            finally:
                client.close()
            if int(reply.get("term", -1)) > self.term:
                with self.node.lock:
                    self.update_term(int(reply["term"]), f"vote reply from {host}")
            with done:
                tally["answered"] += 1
                tally["granted"] += 1 if reply.get("voteGranted") else 0
                done.notify_all()

        for host in hosts:
            threading.Thread(target=ask, args=(host,), name=f"Vote-{host}", daemon=True).start()
        with done:
            done.wait_for(lambda: tally["granted"] >= needed or tally["answered"] == len(hosts))
            return tally["granted"]

    def vote_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answers replSetRequestVotes (lock held)."""
        term = int(request["term"])
        dry_run = bool(request.get("dryRun"))
        candidate = int(request["candidateIndex"])

        def answer(granted: bool, reason: str) -> dict[str, Any]:
            if not dry_run:
                self.node.logger.log(
                    "I",
                    "ELECTION",
                    5972100,
                    "Voting cast",
                    {"candidate": candidate, "term": term, "granted": granted, "reason": reason},
                )
            return {"ok": 1.0, "term": self.term, "voteGranted": granted, "reason": reason}

        if self.config is None or request.get("setName") != self.set_name:
            return answer(False, "candidate's set name differs from mine")
        their_version, their_term = int(request.get("configVersion", -1)), int(request.get("configTerm", -1))
        if config_newer(self.config["version"], self.config["term"], their_version, their_term):
            return answer(
                False,
                f"candidate's config with {{version: {their_version}, term: {their_term}}} is older than mine with "
                f"{{version: {self.config['version']}, term: {self.config['term']}}}",
            )
        if term < self.term:
            return answer(False, "candidate's term is lower than mine")
        if not dry_run and term > self.term:
            self.update_term(term, f"vote request from member {candidate}")
        if not dry_run and self.voted_for and self.voted_for[0] == term and self.voted_for[1] != candidate:
            return answer(False, f"already voted for another candidate in term {term}")
        if optime_key(request["lastAppliedOpTime"]) < optime_key(self.applied()):
            return answer(False, "candidate's data is staler than mine")
        if dry_run and self.state == PRIMARY and term == self.term + 1:
            # A live primary denies dry runs unless the candidate outranks it (a priority takeover).
            candidate_member = self.member(candidate)
            me = self.me
            if candidate_member and me and candidate_member["priority"] <= me["priority"]:
                return answer(False, "I am the primary and the candidate does not have a higher priority")
        if not dry_run:
            self.voted_for = (term, candidate)
            self._persist_election_state()
            self._election_deadline = self._new_election_deadline()
            me = self.me or {}
            self.metrics.voted(
                {
                    "votedForCandidate": True,
                    "electionTerm": Int64(term),
                    "lastVoteDate": utcnow(),
                    "electionCandidateMemberId": candidate,
                    "voteReason": "",
                    "lastAppliedOpTimeAtElection": self.applied(),
                    "maxAppliedOpTimeInSet": max(
                        [self.applied(), *(v.applied for v in self.views.values() if v.health)], key=optime_key
                    ),
                    "priorityAtElection": float(me.get("priority", 0.0)),
                }
            )
        return answer(True, "")

    def _become_primary(self, reason: str) -> None:
        self.election_time = self.node.next_timestamp()
        self.election_date = utcnow()
        self.positions = {}
        self.progress = {}
        self.stepping_down = False
        self.node.logger.log(
            "I", "ELECTION", 21450, "Election succeeded, assuming primary role", {"term": self.term, "reason": reason}
        )
        self._set_state(PRIMARY)
        # The first entry of the new term: it lets the commit point advance past older terms (Raft).
        self.node.log_op({"op": "n", "ns": "", "o": {"msg": "new primary"}})
        self.metrics.election_won(reason, self.term, utcnow())
        assert self.config is not None
        if self.config["term"] != self.term:
            # signalDrainComplete: the new primary installs its config again with the new term (same version).
            self._install_config({**self.config, "term": self.term})
        self.node.logger.log(
            "I", "REPL", 21331, "Transition to primary complete; database writes are now permitted", {"term": self.term}
        )
        self._noop_last_known = self.applied()  # startWritingPeriodicNoops(lastApplied)
        self._advance_commit_point()

    def election_id(self) -> ObjectId:
        return ObjectId(b"\x7f\xff\xff\xff" + self.term.to_bytes(8, "big"))

    # -- step down / freeze -----------------------------------------------------------------------------------
    def step_down(self, step_down_secs: float, catch_up_secs: float, force: bool) -> None:
        """replSetStepDown: refuse writes, wait up to ``catch_up_secs`` until a majority (including an electable
        secondary) has our last entry, then step down and hand off the election (unless ``force``)."""
        with self.node.lock:
            if self.state != PRIMARY:
                raise CommandError(10107, "not primary so can't step down")
            if self.stepping_down:
                raise CommandError(117, "This node is already in the process of stepping down")
            if step_down_secs < catch_up_secs:
                raise CommandError(2, "stepdown period must be longer than secondaryCatchUpPeriodSecs")
            # Writes are refused from now on, and hello says so at once (topologyVersion + 1): drivers
            # then stop sending writes here and retry elsewhere.
            self.stepping_down = True
            self.node.bump_topology()
            target = self.applied()
            deadline = time.monotonic() + catch_up_secs
            try:
                while True:
                    candidate = self._caught_up_electable_secondary(target)
                    if candidate is not None or time.monotonic() >= deadline or self.state != PRIMARY:
                        break
                    self.node.changed.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                if self.state != PRIMARY:
                    raise CommandError(189, "primary stepped down while waiting for secondaries to catch up")
                if candidate is None and not force:
                    raise CommandError(
                        262,
                        f"No electable secondaries caught up as of {utcnow().isoformat()}. Please use the "
                        "replSetStepDown command with the argument {force: true} to force node to step down.",
                    )
                self.stepdown_until = time.monotonic() + step_down_secs
                self._step_down_locked("replSetStepDown command")
            finally:
                if self.stepping_down:  # the attempt failed: writable again, and hello says so
                    self.stepping_down = False
                    self.node.bump_topology()
            handoff = (
                candidate is not None and not force and bool(self.node.settings.parameters["enableElectionHandoff"])
            )
        if handoff:
            assert candidate is not None
            # Election handoff (enableElectionHandoff): ask the caught-up secondary to stand now.
            threading.Thread(
                target=self._hand_off, args=(candidate["host"],), name="ElectionHandoff", daemon=True
            ).start()

    def step_down_for_shutdown(self, wait_secs: float, signaled: bool) -> None:
        """stepDownForShutdown: a primary of a multi-member set steps down (not forced, waiting up to
        ``wait_secs`` for a caught-up secondary; frozen for a day). A signaled shutdown first enters terminal
        shutdown and carries on if the step-down fails; the shutdown command path raises the error."""
        with self.node.lock:
            if signaled:
                self.terminal_shutdown = True
            if self.state != PRIMARY or len(self.members()) == 1:
                return
        try:
            self.step_down(_SHUTDOWN_STEPDOWN_SECS, wait_secs, force=False)
        except CommandError as exc:
            if not signaled:
                raise
            self.node.logger.log(
                "W", "REPL", 4719000, "Error stepping down during force shutdown", {"error": exc.errmsg}
            )

    def enter_quiesce_if_secondary(self, seconds: float) -> bool:
        """enterQuiesceModeIfSecondary: a SECONDARY answers hello with ShutdownInProgress from now on."""
        with self.node.lock:
            self.node.logger.log("I", "REPL", 4794602, "Attempting to enter quiesce mode", {})
            if self.state != SECONDARY:
                return False
            self.node.quiesce_deadline = time.monotonic() + seconds
            self.node.bump_topology()  # wakes awaitable hellos, which then fail with ShutdownInProgress
            return True

    def _caught_up_majority(self, target: dict[str, Any]) -> bool:
        caught_up = sum(
            1
            for member in self.voters()
            if member["_id"] == self.self_id
            or optime_key(self.positions.get(member["_id"], NULL_OPTIME)) >= optime_key(target)
        )
        return caught_up >= self.majority()

    def _caught_up_electable_secondary(self, target: dict[str, Any]) -> dict[str, Any] | None:
        """TopologyCoordinator::tryToStartStepDown: a majority has our last entry, one of them electable."""
        if not self._caught_up_majority(target):
            return None
        for member in self.others():
            view = self.views.get(member["_id"])
            position = self.positions.get(member["_id"], NULL_OPTIME)
            if (
                view
                and view.health
                and view.state == SECONDARY
                and member["priority"] > 0
                and optime_key(position) >= optime_key(target)
            ):
                return member
        return None

    def _hand_off(self, host: str) -> None:
        client = self.node.new_peer_client(host)
        try:
            client.command("admin", {"replSetStepUp": 1, "skipDryRun": True}, timeout=self.heartbeat_timeout)
        except PeerError as exc:
            self.node.logger.log("I", "REPL", 21347, "Election handoff failed", {"target": host, "error": str(exc)})
        finally:
            client.close()

    def freeze(self, seconds: float) -> dict[str, Any]:
        with self.node.lock:
            if self.state == PRIMARY:
                raise CommandError(95, "cannot freeze node when primary or running for election. state: Primary")
            if seconds <= 0:
                # TopologyCoordinator::prepareFreezeResponse: unfreezing also ends a step-down period.
                self.frozen_until = 0.0
                self.stepdown_until = 0.0
                return {"info": "unfreezing"}
            self.frozen_until = time.monotonic() + seconds
            return {}

    def set_maintenance(self, enable: bool) -> None:
        """replSetMaintenance: a SECONDARY goes RECOVERING while at least one request to enter is active."""
        with self.node.lock:
            if self.state == PRIMARY:
                raise CommandError(95, "primaries can't modify maintenance mode")
            if self.state not in (SECONDARY, RECOVERING):
                raise CommandError(95, f"cannot modify maintenance mode in state {STATE_NAMES[self.state]}")
            if enable:
                self.maintenance_calls += 1
                self.node.logger.log(
                    "I",
                    "REPL",
                    21350,
                    "Going into maintenance mode",
                    {"otherMaintenanceModeTasksInProgress": self.maintenance_calls - 1},
                )
                self._set_state(RECOVERING)
                return
            if self.maintenance_calls == 0:
                raise CommandError(96, "already out of maintenance mode")
            self.maintenance_calls -= 1
            if self.maintenance_calls == 0:
                self.node.logger.log("I", "REPL", 21351, "Leaving maintenance mode", {})
                self._set_state(SECONDARY)

    # -- periodic no-op writer (noop_writer.cpp) -----------------------------------------------------------------
    def _noop_loop(self) -> None:
        """Every periodicNoopIntervalSecs a primary that wrote nothing since the last round writes
        ``{op: "n", o: {msg: "periodic noop"}}`` (if writePeriodicNoops), so an idle set's optimes move."""
        while not self._stop.wait(self.node.settings.periodic_noop_interval):
            with self.node.lock:
                if self.state != PRIMARY or self.stepping_down or self.node.shutdown.requested:
                    continue
                idle = self._noop_last_known is not None and optime_key(self.applied()) == optime_key(
                    self._noop_last_known
                )
                if idle and self.node.settings.parameters["writePeriodicNoops"]:
                    self.node.log_op({"op": "n", "ns": "", "o": {"msg": "periodic noop"}})
                self._noop_last_known = self.applied()

    # -- commit point --------------------------------------------------------------------------------------------
    def _record_position(self, member_id: int, optime: dict[str, Any]) -> None:
        """A secondary's durable optime (primary side): the commit point and w:<n> count these."""
        current = self.positions.get(member_id, NULL_OPTIME)
        if optime_key(optime) > optime_key(current):
            self.positions[member_id] = optime
            self._advance_commit_point()

    def _record_progress(self, member_id: int, report: dict[str, Any]) -> None:
        """replSetUpdatePosition (here: carried by each oplog fetch): applied and durable optimes with their
        wall times; replSetGetStatus shows the newer of this and the last heartbeat."""
        applied = report.get("applied", NULL_OPTIME)
        current = self.progress.get(member_id)
        if current is None or optime_key(applied) >= optime_key(current["applied"]):
            self.progress[member_id] = {
                "applied": applied,
                "applied_wall": report.get("appliedWall", EPOCH),
                "durable": report.get("durable", applied),
                "durable_wall": report.get("durableWall", report.get("appliedWall", EPOCH)),
            }
        self._record_position(member_id, report.get("durable", applied))

    def durable_advanced(self) -> None:
        """The journal flusher made more of the oplog durable (lock held)."""
        self._advance_commit_point()

    def _advance_commit_point(self) -> None:
        if self.state != PRIMARY:
            return
        mine = self.node.durable()[0]  # writeConcernMajorityJournalDefault: durable optimes count
        applied = [
            mine if m["_id"] == self.self_id else self.positions.get(m["_id"], NULL_OPTIME) for m in self.voters()
        ]
        applied.sort(key=optime_key, reverse=True)
        candidate = applied[self.majority() - 1]
        # Raft: only entries of the current term are committed by counting replicas.
        if candidate["t"] == self.term and optime_key(candidate) > optime_key(self.commit_point):
            self._set_commit_point(candidate)
            self.metrics.write_majority_available(utcnow())

    def _set_commit_point(self, optime: dict[str, Any]) -> None:
        self.commit_point = optime
        self.node.catalog.reclaim_oplog()  # the commit point pins the oplog
        entry = self.node.catalog.oplog_entry(optime["ts"])
        self.commit_point_wall = entry.get("wall", EPOCH) if entry else EPOCH
        self.node.changed.notify_all()

    def write_status(self, optime: dict[str, Any], w: Any) -> str:
        """ "done", "waiting" or "stepped_down" for a numeric or tag write concern (lock held)."""
        if self.state != PRIMARY:
            return "stepped_down"
        have = [
            member
            for member in self.members()
            if member["_id"] == self.self_id
            or optime_key(self.positions.get(member["_id"], NULL_OPTIME)) >= optime_key(optime)
        ]
        if isinstance(w, str):
            mode = self.settings.get("getLastErrorModes", {}).get(w, {})
            satisfied = all(
                len({m["tags"][tag] for m in have if tag in m.get("tags", {})}) >= int(needed)
                for tag, needed in mode.items()
            )
            return "done" if satisfied else "waiting"
        return "done" if len([m for m in have if not m["arbiterOnly"]]) >= int(w) else "waiting"

    def majority_write_status(self, optime: dict[str, Any]) -> str:
        """ "done", "waiting", or "stepped_down" for a majority write concern wait (lock held)."""
        if optime_key(self.commit_point) >= optime_key(optime):
            return "done"
        if self.state != PRIMARY:
            return "stepped_down"
        return "waiting"

    # -- oplog fetching (sync source side) -------------------------------------------------------------------
    def fetch_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Serves emuFetchOplog: long-polls for entries after ``after`` (lock held; waits on node.changed).

        Like the OplogFetcher's first-batch check: a fetcher whose last entry is older than this member's oldest
        entry is too stale to sync from here (315 TooStaleToSyncFromSource); one whose last entry is missing
        although not older has diverged (120 OplogStartMissing: rollback)."""
        member_id = request.get("memberId")
        if isinstance(member_id, int) and self.state == PRIMARY:
            self._record_progress(member_id, request)
        if int(request.get("term", -1)) > self.term:
            self.update_term(int(request["term"]), "oplog fetch")
        after = request.get("after")
        if after and after["t"] != -1 and not self.node.catalog.has_oplog_entry(after["ts"], int(after["t"])):
            oplog = self.node.catalog.oplog
            if oplog and after["ts"] < oplog[0]["ts"]:
                raise CommandError(
                    315,
                    f"we are too stale to sync from this source: our last fetched timestamp {after['ts']} is before "
                    f"its earliest timestamp {oplog[0]['ts']}",
                )
            raise CommandError(120, "our last optime fetched is not in the sync source's oplog")
        deadline = time.monotonic() + int(request.get("maxWaitMS", 0)) / 1000
        after_ts = after["ts"] if after and after["t"] != -1 else None
        while True:
            entries = self.node.catalog.oplog_after(after_ts, int(request.get("limit", FETCH_BATCH)))
            remaining = deadline - time.monotonic()
            if entries or remaining <= 0 or self._stop.is_set():
                break
            self.node.changed.wait(remaining)
        return {
            "ok": 1.0,
            "entries": entries,
            "commitPoint": self.commit_point,
            "commitPointWall": self.commit_point_wall,
            "term": self.term,
            "state": self.state,
        }

    def oplog_contains_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        """For rollback: the newest of the candidate optimes that this member's oplog holds."""
        for optime in request.get("optimes", []):
            if self.node.catalog.has_oplog_entry(optime["ts"], int(optime["t"])):
                return {"ok": 1.0, "commonPoint": optime}
        return {"ok": 1.0, "commonPoint": None}

    def clone_batch_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Serves emuCloneBatch (initial sync's collection scan; lock held): the BSON of the documents whose
        ``_id`` sorts after ``after``, at most ``limit`` of them and about 16 MB; a missing collection has none."""
        if self.state not in (PRIMARY, SECONDARY):
            raise CommandError(13436, "not primary or secondary; cannot currently read from this replSet member")
        after = request.get("after")
        limit = max(1, int(request.get("limit", 101)))
        blobs = self.node.catalog.documents_after(
            str(request["db"]),
            str(request["emuCloneBatch"]),
            bytes(after) if after is not None else None,
            limit,
            16 * 1024 * 1024,
        )
        return {"ok": 1.0, "documents": [Binary(blob) for blob in blobs], "exhausted": len(blobs) < limit}

    # -- sync source selection (secondary side) ---------------------------------------------------------------
    def stop_requested(self, wait_seconds: float) -> bool:
        """Waits up to ``wait_seconds`` (0: just checks); True once replication is stopping."""
        return self._stop.wait(wait_seconds) if wait_seconds > 0 else self._stop.is_set()

    def _pings_enough(self) -> bool:
        # TopologyCoordinator::chooseNewSyncSource: "wait for 2N pings (not counting ourselves) before choosing
        # a sync target", so a (re)started member syncs only after two heartbeat rounds.
        return (len(self.members()) - 1) * 2 - sum(view.pings for view in self.views.values()) <= 0

    def _eligible_sources(self, exclude: set[str]) -> list[tuple[dict[str, Any], MemberView]]:
        now = time.monotonic()
        for host in [h for h, until in self._denylist.items() if until <= now]:
            del self._denylist[host]
        eligible = []
        for member in self.others():
            view = self.views.get(member["_id"])
            if view is None or not view.health or view.state not in (PRIMARY, SECONDARY):
                continue
            if member["host"] in exclude or member["host"] in self._denylist:
                continue
            eligible.append((member, view))
        return eligible

    def _choose_sync_source(self, exclude: set[str] | None = None) -> dict[str, Any] | None:
        """Steady state: the primary, else the most advanced member ahead of us; never a denylisted one."""
        if not self._pings_enough():
            return None
        mine = optime_key(self.applied())
        eligible = self._eligible_sources(exclude or set())
        for member, view in eligible:
            if view.state == PRIMARY and view.term >= self.term:
                return member
        ahead = [(optime_key(view.applied), member) for member, view in eligible if optime_key(view.applied) > mine]
        return max(ahead, key=lambda pair: pair[0])[1] if ahead else None

    def choose_initial_sync_source(self) -> dict[str, Any] | None:
        """initialSyncSourceReadPreference: by default primary when chaining is disabled, else primaryPreferred
        for a voting member and nearest for a non-voting one (repl_server_parameters.idl). "Nearest" is the
        smallest heartbeat ping."""
        if not self._pings_enough():
            return None
        mode = str(self.node.settings.parameters["initialSyncSourceReadPreference"])
        if not mode:
            me = self.me or {}
            if not self.settings.get("chainingAllowed", True):
                mode = "primary"
            else:
                mode = "primaryPreferred" if me.get("votes") else "nearest"
        eligible = self._eligible_sources(set())
        primaries = [member for member, view in eligible if view.state == PRIMARY]
        secondaries = sorted(
            ((view.ping_ms, member) for member, view in eligible if view.state == SECONDARY), key=lambda p: p[0]
        )
        nearest = sorted(((view.ping_ms, member) for member, view in eligible), key=lambda p: p[0])
        if mode == "primary":
            return primaries[0] if primaries else None
        if mode == "primaryPreferred":
            return primaries[0] if primaries else (secondaries[0][1] if secondaries else None)
        if mode == "secondary":
            return secondaries[0][1] if secondaries else None
        if mode == "secondaryPreferred":
            return secondaries[0][1] if secondaries else (primaries[0] if primaries else None)
        return nearest[0][1] if nearest else None

    def _denylist_source(self, host: str, seconds: float) -> None:
        self._denylist[host] = time.monotonic() + seconds

    def _probe_source(self, host: str) -> Timestamp | Exception | None:
        """SyncSourceResolver's first-oplog-entry fetcher: the candidate's oldest entry (None if its oplog is
        empty), or the error."""
        client = self.node.new_peer_client(host)
        try:
            reply = client.command(
                LOCAL_DB,
                {"find": OPLOG, "limit": 1, "sort": {"$natural": 1}, "projection": {"ts": 1, "t": 1}},
                timeout=_RESOLVER_TIMEOUT_SECS,
            )
        except PeerError as exc:
            return exc
        finally:
            client.close()
        batch = reply["cursor"]["firstBatch"]
        return batch[0]["ts"] if batch else None

    def _resolve_sync_source(self) -> str:
        """SyncSourceResolver + BackgroundSync::_produce: probe candidates until one still has our last entry
        in its oplog range; when every candidate is too far ahead, go too stale (RECOVERING, maintenance mode)."""
        earliest: Timestamp | None = None
        tried: set[str] = set()
        while not self._stop.is_set():
            with self.node.lock:
                candidate = self._choose_sync_source(tried)
                last_fetched = self.applied()
            if candidate is None:
                break
            host = str(candidate["host"])
            tried.add(host)
            result = self._probe_source(host)
            log = self.node.logger.log
            with self.node.lock:
                if isinstance(result, Exception) or result is None:
                    self._denylist_source(host, _FETCHER_ERROR_DENYLIST_SECS)
                    log(
                        "I",
                        "REPL",
                        5579707 if isinstance(result, Exception) else 5579703,
                        "Denylisting candidate due to error" if result else "Denylisting candidate due to empty oplog",
                        {"candidate": host, "error": str(result), "denylistDuration": "10s"},
                    )
                    continue
                if last_fetched["ts"] < result:
                    self._denylist_source(host, _TOO_STALE_DENYLIST_SECS)
                    log(
                        "I",
                        "REPL",
                        5579708,
                        "We are too stale to use candidate as a sync source. Denylisting this sync source because "
                        "our last fetched timestamp is before their earliest timestamp",
                        {
                            "candidate": host,
                            "lastOpTimeFetchedTimestamp": last_fetched["ts"],
                            "remoteEarliestOpTimeTimestamp": result,
                            "denylistDuration": "1min",
                            "denylistUntil": utcnow() + datetime.timedelta(seconds=_TOO_STALE_DENYLIST_SECS),
                        },
                    )
                    earliest = result if earliest is None or result < earliest else earliest
                    continue
                self._no_longer_too_stale(host)
                return host
        if earliest is not None:
            with self.node.lock:
                self._too_stale_to_catch_up(earliest)
        return ""

    def _too_stale_to_catch_up(self, earliest: Timestamp) -> None:
        """bgsync.cpp: every sync source is too far ahead: error 21126, maintenance mode, RECOVERING (lock held)."""
        last_fetched = self.applied()
        if self.state == PRIMARY:
            self.node.logger.log(
                "W",
                "REPL",
                21115,
                "Too stale to catch up",
                {"lastOpTimeFetched": last_fetched, "earliestOpTimeSeen": {"ts": earliest}},
            )
            return
        if self.too_stale:
            return
        self.node.logger.log(
            "E",
            "REPL",
            21126,
            "Too stale to catch up. Entering maintenance mode. See "
            "http://dochub.mongodb.org/core/resyncingaverystalereplicasetmember",
            {"lastOpTimeFetched": last_fetched, "earliestOpTimeSeen": {"ts": earliest}},
        )
        if self.state not in (SECONDARY, RECOVERING):
            return  # "Failed to transition into maintenance mode": try again next time
        self.maintenance_calls += 1
        self._set_state(RECOVERING)
        self.too_stale = True

    def _no_longer_too_stale(self, host: str) -> None:
        """A good sync source after going too stale: leave maintenance mode (lock held)."""
        if not self.too_stale:
            return
        self.too_stale = False
        self.node.logger.log("I", "REPL", 21091, "No longer too stale. Able to start syncing", {"syncSource": host})
        if self.maintenance_calls > 0:
            self.maintenance_calls -= 1
            if self.maintenance_calls == 0 and self.state == RECOVERING:
                self._set_state(SECONDARY)

    # -- oplog fetching (secondary side) -------------------------------------------------------------------------
    def _sync_loop(self) -> None:
        source = ""  # the resolved sync source, kept until it fails or a better one (a new primary) appears
        while not self._stop.is_set():
            with self.node.lock:
                state = self.state
                syncer = self.initial_syncer if state == STARTUP2 else None
            if syncer is not None:
                if syncer.run():
                    with self.node.lock:
                        self.node.rebuild_sessions()
                        self._go_live_as_secondary()
                continue
            if state not in (SECONDARY, RECOVERING) or self.config is None:
                source = ""
                with self.node.lock:
                    self.sync_source = ""
                self._stop.wait(_NO_SYNC_SOURCE_RETRY_SECS if self.config else 0.2)
                continue
            with self.node.lock:
                preferred = self._choose_sync_source()
                if source in self._denylist:
                    source = ""
            if preferred is not None and preferred["host"] != source:
                source = self._resolve_sync_source()
            with self.node.lock:
                if source != self.sync_source:
                    self.sync_source = source
                    if source:
                        self.node.logger.log("I", "REPL", 21799, "Sync source candidate chosen", {"syncSource": source})
                wait = self.heartbeat_interval / 4
            if not source:
                self._stop.wait(_NO_SYNC_SOURCE_RETRY_SECS)
                continue
            if self._sync_client is None or self._sync_client.host != source:
                if self._sync_client is not None:
                    self._sync_client.close()
                self._sync_client = self.node.new_peer_client(source)
            try:
                self._fetch_once(self._sync_client)
            except PeerError as exc:
                code = exc.reply.get("code") if exc.reply else None
                if code == 120:
                    self._rollback(self._sync_client)
                elif code == 315:
                    with self.node.lock:
                        self._denylist_source(source, _TOO_STALE_DENYLIST_SECS)
                        self.node.logger.log(
                            "W",
                            "REPL",
                            5579700,
                            "Oplog fetcher discovered we are too stale to sync from sync source. Denylisting sync "
                            "source",
                            {"syncSource": source, "denylistDuration": "1min"},
                        )
                else:
                    self._stop.wait(wait)
                source = ""

    def _fetch_once(self, client: PeerClient) -> None:
        with self.node.lock:
            applied = self.applied()
            durable, durable_wall = self.node.durable()
            request = {
                "emuFetchOplog": 1,
                "after": applied,
                "applied": applied,
                "appliedWall": self.node.last_applied_wall(),
                "durable": durable,
                "durableWall": durable_wall,
                "memberId": self.self_id,
                "term": self.term,
                "maxWaitMS": int(self.heartbeat_interval * 1000),
                "limit": FETCH_BATCH,
            }
            timeout = self.heartbeat_interval + self.heartbeat_timeout
        reply = client.command("local", request, timeout=timeout)
        with self.node.lock:
            if int(reply.get("term", -1)) > self.term:
                self.update_term(int(reply["term"]), "oplog fetch reply")
            if self.state not in (SECONDARY, RECOVERING) or optime_key(self.applied()) != optime_key(applied):
                return  # state changed while fetching (elected, rolled back...): drop the batch
            for entry in reply["entries"]:
                self.node.apply_replicated(entry)
            if reply["entries"]:
                # Report (with the next fetch) only what is on disk: the commit point counts durable copies.
                self.node.wait_durable(self.node.catalog.generation)
            source_commit = reply.get("commitPoint", NULL_OPTIME)
            mine = self.applied()
            learned = source_commit if optime_key(source_commit) <= optime_key(mine) else mine
            if optime_key(learned) > optime_key(self.commit_point):
                self._set_commit_point(learned)
            self.node.changed.notify_all()

    def _rollback(self, client: PeerClient) -> None:
        with self.node.lock:
            recent = [optime_of(e) for e in reversed(self.node.catalog.oplog[-10000:])]
            previous_state = self.state
            self._set_state(ROLLBACK)
        try:
            reply = client.command("local", {"emuOplogContains": 1, "optimes": recent}, timeout=30)
            common = reply.get("commonPoint")
            if common is None:
                raise PeerError("no common point with the sync source: the member needs a resync")
            with self.node.lock:
                dropped = self.node.catalog.truncate_oplog_after(common["ts"])
            touched: dict[tuple[str, bytes], tuple[str, str, Any]] = {}
            for entry in dropped:
                if entry["op"] in ("i", "u", "d"):
                    db, _, coll = entry["ns"].partition(".")
                    doc_id = entry["o"]["_id"] if entry["op"] != "u" else entry["o2"]["_id"]
                    touched[(entry["ns"], id_key(doc_id))] = (db, coll, doc_id)
            refetched = []
            for db, coll, doc_id in touched.values():
                found = client.command("local", {"emuFetchDocument": coll, "db": db, "_id": doc_id}, timeout=30)
                refetched.append((db, coll, doc_id, found.get("document")))
            with self.node.lock:
                for db, coll, doc_id, document in refetched:
                    if document is None:
                        self.node.catalog.delete(db, coll, doc_id)
                    else:
                        self.node.catalog.replace(db, coll, document)
                self.node.rebuild_sessions()
                self.node.logger.log(
                    "I", "ROLLBACK", 21612, "Rollback summary", {"commonPoint": common, "undoneOps": len(dropped)}
                )
                self._set_state(SECONDARY)
        except PeerError as exc:
            with self.node.lock:
                self.node.logger.log("E", "ROLLBACK", 21606, "Rollback failed", {"error": str(exc)})
                self._set_state(RECOVERING if previous_state != PRIMARY else SECONDARY)
            self._stop.wait(self.heartbeat_interval)

    # -- status ---------------------------------------------------------------------------------------------
    def _member_optimes(self, member_id: int, view: MemberView) -> dict[str, Any]:
        """What this node knows of another member's oplog: from its heartbeats, or (on a primary) from its
        position reports, whichever is newer; nothing for a member that is down."""
        if not view.health:
            return {
                "applied": dict(NULL_OPTIME),
                "applied_wall": EPOCH,
                "durable": dict(NULL_OPTIME),
                "durable_wall": EPOCH,
            }
        known = {
            "applied": view.applied,
            "applied_wall": view.applied_wall,
            "durable": view.durable,
            "durable_wall": view.durable_wall,
        }
        reported = self.progress.get(member_id)
        if reported is not None and optime_key(reported["applied"]) > optime_key(known["applied"]):
            known = dict(reported)
        return known

    def status(self, include_initial_sync: bool = True) -> dict[str, Any]:
        """replSetGetStatus (lock held), with mongod's fields."""
        if self.config is None:
            raise CommandError(94, "no replset config has been received")
        now = utcnow()
        applied = self.applied()
        applied_wall = self.node.last_applied_wall()
        durable, durable_wall = self.node.durable()
        members = []
        for member in self.members():
            if member["_id"] == self.self_id:
                entry: dict[str, Any] = {
                    "_id": member["_id"],
                    "name": member["host"],
                    "health": 1.0,
                    "state": self.state,
                    "stateStr": STATE_NAMES[self.state],
                    "uptime": int(time.monotonic() - self.node.started),
                    "optime": applied,
                    "optimeDate": ts_datetime(applied["ts"]),
                    "lastAppliedWallTime": applied_wall,
                    "lastDurableWallTime": durable_wall,
                    "syncSourceHost": self.sync_source,
                    "syncSourceId": (self.member_by_host(self.sync_source) or {}).get("_id", -1),
                    "infoMessage": "",
                    "configVersion": self.config["version"],
                    "configTerm": self.config["term"],
                    "self": True,
                    "lastHeartbeatMessage": "",
                }
                if self.state == PRIMARY and self.election_time is not None:
                    entry["electionTime"] = self.election_time
                    entry["electionDate"] = self.election_date
                members.append(entry)
                continue
            view = self.views.get(member["_id"], MemberView())
            healthy = view.health
            optimes = self._member_optimes(member["_id"], view)
            entry = {
                "_id": member["_id"],
                "name": member["host"],
                "health": 1.0 if healthy else 0.0,
                "state": view.state,
                "stateStr": STATE_NAMES.get(view.state, "UNKNOWN") if healthy else "(not reachable/healthy)",
                "uptime": int(time.monotonic() - view.up_since) if healthy and view.up_since else 0,
                "optime": optimes["applied"],
                "optimeDurable": optimes["durable"],
                "optimeDate": ts_datetime(optimes["applied"]["ts"]),
                "optimeDurableDate": ts_datetime(optimes["durable"]["ts"]),
                "lastAppliedWallTime": optimes["applied_wall"],
                "lastDurableWallTime": optimes["durable_wall"],
                "lastHeartbeat": view.last_heartbeat or EPOCH,
                "lastHeartbeatRecv": view.last_heartbeat_recv or EPOCH,
                "pingMs": view.ping_ms,
                "lastHeartbeatMessage": view.last_heartbeat_message,
                "syncSourceHost": view.sync_source,
                "syncSourceId": (self.member_by_host(view.sync_source) or {}).get("_id", -1),
                "infoMessage": "",
                "configVersion": view.config_version,
                "configTerm": view.config_term,
            }
            if healthy and view.state == PRIMARY and view.election_time is not None:
                entry["electionTime"] = view.election_time
                entry["electionDate"] = ts_datetime(view.election_time)
            members.append(entry)
        voters = len(self.voters())
        status: dict[str, Any] = {
            "set": self.set_name,
            "date": now,
            "myState": self.state,
            "term": self.term,
            "syncSourceHost": self.sync_source,
            "syncSourceId": (self.member_by_host(self.sync_source) or {}).get("_id", -1),
            "heartbeatIntervalMillis": int(self.settings["heartbeatIntervalMillis"]),
            "majorityVoteCount": self.majority(),
            "writeMajorityCount": self.majority(),
            "votingMembersCount": voters,
            "writableVotingMembersCount": len([m for m in self.voters() if not m["arbiterOnly"]]),
            "optimes": {
                "lastCommittedOpTime": self.commit_point,
                "lastCommittedWallTime": self.commit_point_wall,
                "readConcernMajorityOpTime": self.commit_point,
                "appliedOpTime": applied,
                "durableOpTime": durable,
                "lastAppliedWallTime": applied_wall,
                "lastDurableWallTime": durable_wall,
            },
        }
        if include_initial_sync and self.initial_syncer is not None and self.state == STARTUP2:
            status["initialSyncStatus"] = self.initial_syncer.status_document()
        if self.metrics.candidate and self.state == PRIMARY:
            status["electionCandidateMetrics"] = dict(self.metrics.candidate)
        if self.metrics.participant:
            status["electionParticipantMetrics"] = dict(self.metrics.participant)
        status["members"] = members
        return status

    def hello_fields(self) -> dict[str, Any]:
        if self.config is None:
            return {"isreplicaset": True, "info": "Does not have a valid replica set config"}
        visible = [m for m in self.members() if not m["hidden"]]
        fields: dict[str, Any] = {
            "hosts": [m["host"] for m in visible if not m["arbiterOnly"] and m["priority"] > 0],
            "setName": self.set_name,
            "setVersion": self.config["version"],
        }
        passives = [m["host"] for m in visible if not m["arbiterOnly"] and m["priority"] == 0]
        arbiters = [m["host"] for m in visible if m["arbiterOnly"]]
        if passives:
            fields["passives"] = passives
        if arbiters:
            fields["arbiters"] = arbiters
        primary = self.primary_member()
        if primary is not None:
            fields["primary"] = primary["host"]
        me = self.me
        if me is not None:
            fields["me"] = me["host"]
            if me["priority"] == 0:
                fields["passive"] = True
            if me["hidden"]:
                fields["hidden"] = True
        if self.state == PRIMARY:
            fields["electionId"] = self.election_id()
        applied = self.applied()
        fields["lastWrite"] = {
            "opTime": applied,
            "lastWriteDate": ts_datetime(applied["ts"]),
            "majorityOpTime": self.commit_point,
            "majorityWriteDate": ts_datetime(self.commit_point["ts"]),
        }
        return fields
