# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted mongod (mockupdb) on 127.0.50.x for the mongod_member_* modules and _mongod.member."""

from __future__ import annotations

import datetime
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mockupdb import Command, MockupDB, OpMsg

HOST = "127.0.50.11"
NOW = datetime.datetime(2026, 11, 27, 23, 0, 0)


def hello(primary: bool, set_name: str | None = "rs0") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ismaster": primary,
        "isWritablePrimary": primary,
        "secondary": not primary,
        "helloOk": True,
        "minWireVersion": 0,
        "maxWireVersion": 21,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000,
    }
    if set_name:
        doc.update(setName=set_name, hosts=["db1:27017", "db2:27017", "db3:27017"], primary="db1:27017")
    return doc


def status(states: list[tuple[str, int, float]], my_state: int) -> dict[str, Any]:
    """``states``: (stateStr, health, seconds behind NOW) per member; member 2 is self."""
    members = []
    for index, (state_str, health, behind) in enumerate(states, start=1):
        member = {
            "_id": index,
            "name": f"db{index}:27017",
            "stateStr": state_str,
            "health": health,
            "optimeDate": NOW - datetime.timedelta(seconds=behind),
        }
        if index == 2:
            member["self"] = True
        members.append(member)
    return {"ok": 1, "set": "rs0", "myState": my_state, "members": members}


def free_port() -> int:
    """A port on HOST where nothing listens (just released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def scripted_member(host: str = HOST) -> Iterator[MockupDB]:
    """A mockupdb server on ``host`` (an ephemeral port): script it with ``serve``."""
    server = MockupDB(request_timeout=5)
    server._address = (host, 0)  # our loopback range instead of localhost
    server.run()
    try:
        yield server
    finally:
        server.stop()


def serve(server: MockupDB, hello_doc: dict[str, Any], rs_status: dict[str, Any] | None) -> None:
    """Answer hello, replSetGetStatus (``None``: not a replica set), serverStatus and endSessions."""
    for name in ("ismaster", "isMaster", "hello"):
        server.autoresponds(Command(name), hello_doc)
        server.autoresponds(OpMsg(name), hello_doc)
    if rs_status is None:
        server.autoresponds(OpMsg("replSetGetStatus"), {"ok": 0, "code": 76, "errmsg": "not running with --replSet"})
    else:
        server.autoresponds(OpMsg("replSetGetStatus"), rs_status)
    server.autoresponds(OpMsg("serverStatus"), {"ok": 1, "pid": 4321, "host": "db2:27017", "uptime": 12.0})
    server.autoresponds(OpMsg("endSessions"), {"ok": 1})
