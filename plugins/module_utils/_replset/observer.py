# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Read a replica set's view from its primary, starting from one member or a list of seeds.

One ``observe()`` is one poll: ask the first member that answers ``hello`` (the given member,
then the seeds), follow ``hello.primary`` and read replSetGetStatus, replSetGetConfig and the
ends of the oplog from the primary, each over a direct connection of ``_mongod/member.py``
(same credentials and TLS options for every member). An unreachable member is part of the
observation, never an exception: while a member restarts, that is the normal state. Wrong
credentials, a mongod that is no replica set member and refused commands are raised as the
typed errors of ``member.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    MongodCommandError,
    MongodNotReplicaSetError,
    MongodUnreachableError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import (
    classify,
    command,
    connect,
    member_address,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.view import ReplsetView, build_view, oplog_fill

with PYMONGO.importing():
    from pymongo.errors import PyMongoError

#: replSetGetConfig / find on local.oplog.rs refused to a user without the privilege
UNAUTHORIZED = 13


def split_address(address: str, option: str = "seeds") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port); a bare host means port 27017."""
    text = address.strip()
    if text.startswith("["):
        end = text.find("]")
        host = text[1:end] if end > 0 else ""
        rest = text[end + 1 :] if end > 0 else ""
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise InvalidOptionError(option, f"{address!r} is not host:port")
    try:
        port = int(port_text) if port_text else 27017
    except ValueError:
        raise InvalidOptionError(option, f"{address!r}: the port is not a number") from None
    if not 0 < port < 65536:
        raise InvalidOptionError(option, f"{address!r}: the port is out of range")
    return host, port


@dataclass
class Observation:
    """What one poll saw."""

    #: the primary's view, or the view of the first member that answered when no primary could
    #: be read; None when no member answered
    view: ReplsetView | None
    #: ``hello.me`` of the member the options point at (login_host:login_port), once it answered
    #: in this run (remembered while it is down)
    login_member: str | None
    #: the name of the first member that answered in this poll
    first_answer: str | None
    #: address -> why it could not be reached, for the members tried in this poll
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def from_primary(self) -> bool:
        return self.view is not None and self.view.from_primary

    @property
    def self_name(self) -> str | None:
        """The member the module talked to first: the login member if it ever answered, else
        the first member that answered this poll."""
        return self.login_member or self.first_answer

    def describe(self) -> str:
        if self.view is None:
            tried = "; ".join(f"{address}: {why}" for address, why in self.unreachable.items())
            return f"no member answered ({tried})"
        text = self.view.summary()
        if not self.view.from_primary:
            text += " (not the primary's view)"
        return text


class ReplsetObserver:
    """Polls the replica set that ``params`` (mongod connection options) and ``seeds`` lead to."""

    def __init__(
        self,
        params: dict[str, Any],
        seeds: list[str] | None = None,
        connector: Callable[[dict[str, Any]], Any] = connect,
        want_login_member: bool = False,
    ) -> None:
        self.params = params
        self.login_address = member_address(params)
        self.seeds = [self._address(*split_address(seed)) for seed in seeds or []]
        self.connector = connector
        #: ask the login member for its name even when another member answered first (costs up
        #: to timeout_ms per poll while it is down: only when the caller needs the name)
        self.want_login_member = want_login_member
        self._clients: dict[str, Any] = {}
        #: the member that answered last time, tried first next time (no timeout_ms lost on a
        #: member that is known to be down)
        self._preferred: str | None = None
        #: hello.me of the login member, remembered once it answered
        self.login_member: str | None = None

    # -- connections ------------------------------------------------------------------------

    @staticmethod
    def _address(host: str, port: int) -> str:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _client(self, address: str) -> Any:
        client = self._clients.get(address)
        if client is None:
            host, port = split_address(address, "member")
            client = self.connector({**self.params, "login_host": host, "login_port": port})
            self._clients[address] = client
        return client

    def _drop(self, address: str) -> None:
        client = self._clients.pop(address, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        for address in list(self._clients):
            self._drop(address)

    def __enter__(self) -> ReplsetObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def candidates(self) -> list[str]:
        """The addresses to ask, in order: the last that answered, the login member, the seeds."""
        order = [self._preferred] if self._preferred else []
        order += [self.login_address, *self.seeds]
        return list(dict.fromkeys(order))

    # -- one poll -----------------------------------------------------------------------------

    def observe(self) -> Observation:
        unreachable: dict[str, str] = {}
        first_answer: str | None = None
        fallback: tuple[str, dict[str, Any]] | None = None
        for address in self.candidates():
            hello = self._hello(address, unreachable)
            if hello is None:
                continue
            me = hello.get("me") or address
            first_answer = first_answer or me
            if address == self.login_address:
                self.login_member = me
            view = None
            primary = hello.get("primary")
            if hello.get("isWritablePrimary"):
                view = self._read_view(address, unreachable, primary=True)
            elif primary:
                view = self._view_from_primary(primary, unreachable)
            if view is not None and view.from_primary:
                self._preferred = address
                if self.want_login_member and self.login_member is None and self.login_address not in unreachable:
                    self._login_me(unreachable)
                return Observation(view, self.login_member, first_answer, unreachable)
            fallback = fallback or (address, hello)
        view = None
        if fallback is not None:
            # no primary could be read: say at least how the first member that answered sees it
            view = self._read_view(fallback[0], unreachable, primary=False)
            self._preferred = fallback[0]
        return Observation(view, self.login_member, first_answer, unreachable)

    def _hello(self, address: str, unreachable: dict[str, str]) -> dict[str, Any] | None:
        try:
            hello = command(self._client(address), address, "hello")
        except MongodUnreachableError as error:
            unreachable[address] = error.cause
            return None
        if not hello.get("setName"):
            raise MongodNotReplicaSetError(address, "hello names no replica set")
        return hello

    def _login_me(self, unreachable: dict[str, str]) -> None:
        """hello.me of the login member when the poll started elsewhere (it may be down)."""
        hello = self._hello(self.login_address, unreachable)
        if hello is not None:
            self.login_member = hello.get("me") or self.login_address

    def _view_from_primary(self, primary: str, unreachable: dict[str, str]) -> ReplsetView | None:
        hello = self._hello(primary, unreachable)
        if hello is None or not hello.get("isWritablePrimary"):
            return None
        return self._read_view(primary, unreachable, primary=True)

    def _read_view(self, address: str, unreachable: dict[str, str], primary: bool) -> ReplsetView | None:
        client = self._client(address)
        try:
            status = command(client, address, "replSetGetStatus")
            config = self._optional(client, address, "replSetGetConfig")
            first, last = self._oplog_ends(client, address) if primary else (None, None)
            fill = oplog_fill(self._oplog_stats(client, address)) if primary else None
        except MongodUnreachableError as error:
            unreachable[address] = error.cause
            return None
        return build_view(status, config, first, last, fill)

    @staticmethod
    def _optional(client: Any, address: str, name: str) -> dict[str, Any] | None:
        """A command the user may lack the privilege for: None then."""
        try:
            return command(client, address, name)
        except MongodCommandError as error:
            if error.code == UNAUTHORIZED:
                return None
            raise

    @staticmethod
    def _oplog_stats(client: Any, address: str) -> dict[str, Any] | None:
        """collStats of local.oplog.rs (size and maxSize, as db.getReplicationInfo() reads them);
        None when refused for any reason (not allowed, deprecated some day): the fill only refines
        the window, it must never fail a poll. An unreachable member is raised as for the rest."""
        try:
            return client.local.command("collStats", "oplog.rs")
        except PyMongoError as exc:
            error = classify(exc, address, "collStats local.oplog.rs")
            if isinstance(error, MongodCommandError):
                return None
            raise error from None

    @staticmethod
    def _oplog_ends(client: Any, address: str) -> tuple[Any, Any]:
        """ts of the first and the last entry of local.oplog.rs (None, None when not allowed)."""
        oplog = client.local["oplog.rs"]
        try:
            ends = []
            for order in (1, -1):
                doc = next(iter(oplog.find({}, {"ts": 1}).sort("$natural", order).limit(1)), None)
                ends.append(doc.get("ts") if doc else None)
        except PyMongoError as exc:
            error = classify(exc, address, "find local.oplog.rs")
            if isinstance(error, MongodCommandError) and error.code == UNAUTHORIZED:
                return None, None
            raise error from None
        return ends[0], ends[1]
