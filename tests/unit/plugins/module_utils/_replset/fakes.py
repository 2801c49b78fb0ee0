# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted replica set behind a fake pymongo client, for the observer and the modules' tests.

Each member answers hello, replSetGetStatus, replSetGetConfig and the oplog ends from what the
test set in its ``Member``; a member with ``down=True`` raises pymongo's
ServerSelectionTimeoutError, as a stopped mongod does.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

T0 = 1_790_000_000


@dataclass
class Member:
    name: str
    state: str = "SECONDARY"
    down: bool = False
    set_name: str | None = "rs0"
    #: name -> (stateStr, health, seconds behind T0 or None) as this member sees the others
    sees: dict[str, tuple[str, float, float | None]] = field(default_factory=dict)
    unauthorized: set[str] = field(default_factory=set)
    auth_failed: bool = False
    oplog: tuple[int, int] = (T0 - 7200, T0)
    #: collStats of local.oplog.rs: a full oplog by default (its window is its capacity)
    oplog_stats: dict[str, Any] = field(default_factory=lambda: {"size": 990 * 2**20, "maxSize": 990 * 2**20})
    calls: list[str] = field(default_factory=list)


class ReplicaSet:
    def __init__(self, *members: Member) -> None:
        self.members = {m.name: m for m in members}
        self.connections: list[str] = []
        #: called after a member stepped down (e.g. to elect another one)
        self.on_stepdown: Any = None

    def primary(self) -> str | None:
        return next((m.name for m in self.members.values() if m.state == "PRIMARY" and not m.down), None)

    def mongo_client(self, **kwargs: Any) -> FakeClient:
        """A stand-in for pymongo's MongoClient (as _mongod.member.connect calls it)."""
        return self.connector({"login_host": kwargs["host"], "login_port": kwargs["port"]})

    def connector(self, params: dict[str, Any]) -> FakeClient:
        address = f"{params['login_host']}:{params['login_port']}"
        self.connections.append(address)
        return FakeClient(self, address)


def _optime(behind: float | None) -> dict[str, Any]:
    if behind is None:
        return {"optime": {"ts": Timestamp(0, 0), "t": -1}, "optimeDate": datetime.datetime(1970, 1, 1)}
    seconds = int(T0 - behind)
    return {
        "optime": {"ts": Timestamp(seconds, 1), "t": 3},
        "optimeDate": datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None),
    }


class FakeAdmin:
    def __init__(self, rs: ReplicaSet, address: str) -> None:
        self.rs = rs
        self.address = address

    def member(self, name: str) -> Member:
        member = self.rs.members.get(self.address)
        if member is None or member.down:
            raise ServerSelectionTimeoutError(f"{self.address}: [Errno 111] Connection refused")
        member.calls.append(name)
        if member.auth_failed:
            raise OperationFailure("Authentication failed.", code=18)
        if name in member.unauthorized:
            raise OperationFailure(f"not authorized on admin to execute command {{ {name}: 1 }}", code=13)
        return member

    def command(self, name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        member = self.member(name)
        if name == "hello":
            doc: dict[str, Any] = {"isWritablePrimary": member.state == "PRIMARY", "me": member.name}
            if member.set_name:
                doc.update(setName=member.set_name, hosts=list(self.rs.members))
                primary = member.name if member.state == "PRIMARY" else self._seen_primary(member)
                if primary:
                    doc["primary"] = primary
            return doc
        if name == "replSetGetStatus":
            entries = []
            for index, other in enumerate(self.rs.members.values()):
                if other.name == member.name:
                    entries.append(
                        {
                            "_id": index,
                            "name": other.name,
                            "stateStr": member.state,
                            "health": 1.0,
                            "self": True,
                            **_optime(0),
                        }
                    )
                    continue
                state, health, behind = member.sees.get(other.name, (other.state, 1.0, 0))
                entries.append(
                    {"_id": index, "name": other.name, "stateStr": state, "health": health, **_optime(behind)}
                )
            return {"ok": 1, "set": member.set_name, "term": 3, "members": entries}
        if name == "replSetGetConfig":
            hosts = [{"_id": i, "host": n, "priority": 1, "votes": 1} for i, n in enumerate(self.rs.members)]
            return {"ok": 1, "config": {"_id": member.set_name, "members": hosts}}
        if name == "replSetStepDown":
            member.state = "SECONDARY"
            member.calls.append(f"replSetStepDown {args} {kwargs}")
            if self.rs.on_stepdown:
                self.rs.on_stepdown()
            return {"ok": 1}
        raise AssertionError(f"unexpected command {name}")

    def _seen_primary(self, member: Member) -> str | None:
        for other in self.rs.members.values():
            state, health, _ = member.sees.get(other.name, (other.state, 1.0, 0))
            if other.name != member.name and state == "PRIMARY" and health == 1:
                return other.name
        return None


class FakeCursor:
    def __init__(self, admin: FakeAdmin) -> None:
        self.admin = admin
        self.order = 1

    def sort(self, key: str, order: int) -> FakeCursor:
        assert key == "$natural"
        self.order = order
        return self

    def limit(self, count: int) -> list[dict[str, Any]]:
        member = self.admin.member("find local.oplog.rs")
        first, last = member.oplog
        return [{"ts": Timestamp(first if self.order == 1 else last, 1)}]


class FakeCollection:
    def __init__(self, admin: FakeAdmin) -> None:
        self.admin = admin

    def find(self, *args: Any) -> FakeCursor:
        return FakeCursor(self.admin)


class FakeLocal(dict[str, FakeCollection]):
    """The ``local`` database: its oplog collection and collStats."""

    def __init__(self, admin: FakeAdmin) -> None:
        super().__init__({"oplog.rs": FakeCollection(admin)})
        self.admin = admin

    def command(self, name: str, collection: str) -> dict[str, Any]:
        assert (name, collection) == ("collStats", "oplog.rs")
        stats = self.admin.member("collStats local.oplog.rs").oplog_stats
        if "fail" in stats:
            raise OperationFailure("ns does not exist", code=stats["fail"])
        return {"ok": 1, "capped": True, **stats}


class FakeClient:
    def __init__(self, rs: ReplicaSet, address: str) -> None:
        self.admin = FakeAdmin(rs, address)
        self.local = FakeLocal(self.admin)
        self.closed = False

    def close(self) -> None:
        self.closed = True
