"""The emulator's wire protocol and commands on a standalone mongod (127.0.40.10), plus in-process units."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from psmdb_emulator.options import OptionsError, parse_args
from psmdb_emulator.server import query
from psmdb_emulator.server.scram import ScramClientConversation, ScramError, ScramServerConversation, derive_credentials
from psmdb_emulator.server.settings import ServerSettings
from psmdb_emulator.server.testing import QUICK_SHUTDOWN, EmulatorProcess, RawClient, terminate_all, wait_for

HOST = "127.0.40.10"
PORT = 27017


@pytest.fixture(scope="module")
def mongod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    workdir: Path = tmp_path_factory.mktemp("standalone")
    process = EmulatorProcess(workdir, HOST, PORT)
    try:
        process.start()
        process.wait_listening()
        yield process
    finally:
        process.terminate()


@pytest.fixture()
def client(mongod: EmulatorProcess) -> Iterator[MongoClient[dict[str, Any]]]:
    with MongoClient(mongod.address, directConnection=True, serverSelectionTimeoutMS=30000) as mongo:
        yield mongo


def test_handshake_and_build_info_look_like_psmdb_7_0(client: MongoClient[dict[str, Any]]) -> None:
    hello = client.admin.command("hello")
    assert hello["isWritablePrimary"] is True
    assert hello["maxWireVersion"] == 21
    assert "setName" not in hello
    assert set(hello["topologyVersion"]) == {"processId", "counter"}
    for name in ("buildInfo", "buildinfo"):
        info = client.admin.command(name)
        assert info["version"] == "7.0.14-8"
        assert info["psmdbVersion"] == "7.0.14-8"
        assert info["versionArray"] == [7, 0, 14, 8]
        assert len(info["gitVersion"]) == 40
    assert client.server_info()["version"] == "7.0.14-8"


def test_legacy_op_query_is_master_gets_an_op_reply(mongod: EmulatorProcess) -> None:
    payload = bson.encode({"isMaster": 1})
    body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + payload
    message = struct.pack("<iiii", 16 + len(body), 7, 0, 2004) + body
    with socket.create_connection((HOST, PORT), timeout=30) as sock:
        sock.sendall(message)
        header = sock.recv(16, socket.MSG_WAITALL)
        length, _request_id, response_to, op_code = struct.unpack("<iiii", header)
        reply_body = sock.recv(length - 16, socket.MSG_WAITALL)
    assert (op_code, response_to) == (1, 7)  # OP_REPLY to our request
    _flags, _cursor, _start, returned = struct.unpack_from("<iqii", reply_body)
    assert returned == 1
    assert bson.decode(reply_body[20:])["ismaster"] is True


def test_crud_cursor_and_aggregation_round_trip(client: MongoClient[dict[str, Any]]) -> None:
    collection = client.crud.things
    collection.drop()
    collection.insert_many([{"_id": i, "group": i % 3, "n": i} for i in range(250)])
    assert [d["_id"] for d in collection.find({}, batch_size=40).sort("_id", -1).limit(5)] == [249, 248, 247, 246, 245]
    assert len(list(collection.find({}, batch_size=40))) == 250  # several getMore batches
    assert collection.count_documents({"n": {"$gte": 200}}) == 50
    assert collection.estimated_document_count() == 250
    assert collection.update_one({"_id": 7}, {"$set": {"tag": "seven"}}).modified_count == 1
    assert collection.update_many({"group": 0}, {"$inc": {"n": 1000}}).modified_count == 84
    assert collection.find_one({"_id": 7}, {"_id": 0, "tag": 1}) == {"tag": "seven"}
    upsert = collection.update_one({"_id": "new"}, {"$set": {"n": -1}}, upsert=True)
    assert upsert.upserted_id == "new"
    assert collection.delete_many({"group": 1}).deleted_count == 83
    totals = {d["_id"]: d["count"] for d in collection.aggregate([{"$group": {"_id": "$group", "count": {"$sum": 1}}}])}
    assert totals == {0: 84, 2: 83, None: 1}
    assert sorted(collection.distinct("group")) == [0, 2]
    with pytest.raises(OperationFailure) as duplicate:
        collection.insert_one({"_id": 0})  # still there: group 0 was not deleted
    assert duplicate.value.code == 11000
    assert "crud" in client.list_database_names()
    assert client.crud.list_collection_names() == ["things"]


def test_unknown_commands_and_replica_set_commands_fail_like_mongod(client: MongoClient[dict[str, Any]]) -> None:
    with pytest.raises(OperationFailure) as unknown:
        client.admin.command("noSuchCommand")
    assert unknown.value.code == 59
    with pytest.raises(OperationFailure) as not_replset:
        client.admin.command("replSetGetStatus")
    assert not_replset.value.code == 76  # NoReplicationEnabled


def test_server_status_and_cmd_line_opts(mongod: EmulatorProcess, client: MongoClient[dict[str, Any]]) -> None:
    status = client.admin.command("serverStatus")
    assert status["process"] == "mongod"
    assert status["version"] == "7.0.14-8"
    # the machine's host name, ":port" only off 27017 (mongod's prettyHostName)
    assert status["host"] == socket.gethostname() + ("" if PORT == 27017 else f":{PORT}")
    assert "encryptionAtRest" not in status  # 7.0.14-8 has no such section (psmdb-kmip.md s.5)
    assert "repl" not in status
    options = client.admin.command("getCmdLineOpts")
    assert options["parsed"]["net"] == {"bindIp": HOST, "port": PORT}
    assert options["argv"][0] == "mongod"


def test_i10_10_bad_input_never_drops_a_connection(mongod: EmulatorProcess) -> None:
    client = RawClient(mongod.address)
    bad: tuple[tuple[dict[str, Any], str | None], ...] = (
        ({"insert": "c", "documents": [5]}, "TypeMismatch"),
        ({"createIndexes": "c", "indexes": [{"key": {"a": 1}}]}, None),  # an unexpected input: the catch-all
        ({"getParameter": 1, "noSuchParameter": 1}, "InvalidOptions"),
        ({"insert": "c", "documents": [{}], "writeConcern": {"w": -1}}, "FailedToParse"),
        ({"noSuchCommand": 1}, "CommandNotFound"),
    )
    for command, code_name in bad:
        reply = client.run("badinput", command)
        assert reply["ok"] == 0.0 and reply["codeName"] == (code_name or reply["codeName"]), reply
        assert isinstance(reply["code"], int) and reply["codeName"] and reply["errmsg"]
        assert client.run("admin", {"ping": 1})["ok"] == 1.0  # same connection, still served
    assert client.run("admin", {"getDefaultRWConcern": 1})["code"] == 51300  # replica sets only
    parameters = client.run("admin", {"getParameter": 1, "shutdownTimeoutMillisForSignaledShutdown": 1})
    assert parameters["shutdownTimeoutMillisForSignaledShutdown"] == 15000  # mongod's default


def test_i10_9_one_member_set_majority_default_and_initial_sync_status(tmp_path: Path) -> None:
    first = EmulatorProcess(tmp_path / "one", "127.0.40.11", PORT, ["--replSet", "rsone", *QUICK_SHUTDOWN])
    second = EmulatorProcess(tmp_path / "two", "127.0.40.12", PORT, ["--replSet", "rsone", *QUICK_SHUTDOWN])
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    try:
        for process in (first, second):
            process.start()
            process.wait_listening()
        admin = RawClient(first.address)
        config = {
            "_id": "rsone",
            "members": [{"_id": 0, "host": first.address}],
            "settings": {"heartbeatIntervalMillis": 1000},
        }
        assert admin.run("admin", {"replSetInitiate": config})["ok"] == 1.0
        wait_for(
            lambda: admin.run("admin", {"hello": 1}).get("isWritablePrimary"), 60, "the single member to be primary"
        )
        # No writeConcern: the implicit default is w: "majority", which one durable member satisfies.
        reply = admin.run("app", {"insert": "c", "documents": [{"_id": i} for i in range(50)]})
        assert reply["n"] == 50 and "writeConcernError" not in reply
        # A new, empty member syncs in STARTUP2 and shows initialSyncStatus meanwhile.
        config = admin.run("admin", {"replSetGetConfig": 1})["config"]
        config["members"].append({"_id": 1, "host": second.address, "priority": 0, "votes": 0})
        config["version"] += 1
        assert admin.run("admin", {"replSetReconfig": config})["ok"] == 1.0
        seen: list[dict[str, Any]] = []

        def synced() -> bool:
            status = RawClient(second.address).run("admin", {"replSetGetStatus": 1})
            if "initialSyncStatus" in status:
                seen.append(status["initialSyncStatus"])
            return status.get("myState") == 2

        wait_for(synced, 60, "the new member to finish its initial sync", interval=0.05)
        assert seen, "no initialSyncStatus while in STARTUP2"
        assert {"failedInitialSyncAttempts", "maxFailedInitialSyncAttempts", "initialSyncStart",
                "totalInitialSyncElapsedMillis", "initialSyncAttempts", "databases"} <= set(seen[-1])  # fmt: skip
        counted = RawClient(second.address).run("app", {"count": "c", "$readPreference": {"mode": "secondary"}})
        assert counted["n"] == 50
    finally:
        terminate_all([first, second])


def test_i11_config_server_set_needs_configsvr_true_and_writes_noops_every_second(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    member = EmulatorProcess(
        tmp_path / "cfg", "127.0.40.13", PORT, ["--configsvr", "--replSet", "cfg", *QUICK_SHUTDOWN]
    )
    try:
        member.start()
        member.wait_listening()  # on the given --port: an explicit port wins over 27019
        admin = RawClient(member.address)
        config = {"_id": "cfg", "members": [{"_id": 0, "host": member.address}]}
        refused = admin.run("admin", {"replSetInitiate": config})
        assert refused["codeName"] == "BadValue"
        assert refused["errmsg"] == "Nodes started with the --configsvr flag must have configsvr:true in their config"
        assert admin.run("admin", {"replSetInitiate": {**config, "configsvr": True}})["ok"] == 1.0
        wait_for(lambda: admin.run("admin", {"hello": 1}).get("isWritablePrimary"), 60, "the config server primary")
        assert admin.run("admin", {"getCmdLineOpts": 1})["parsed"]["sharding"] == {"clusterRole": "configsvr"}
        assert admin.run("admin", {"getParameter": 1, "periodicNoopIntervalSecs": 1})["periodicNoopIntervalSecs"] == 1
        first = admin.run("admin", {"replSetGetStatus": 1})["optimes"]["appliedOpTime"]["ts"].time
        wait_for(
            lambda: admin.run("admin", {"replSetGetStatus": 1})["optimes"]["appliedOpTime"]["ts"].time >= first + 2,
            15,
            "no-ops every second on an idle config server",
        )
    finally:
        terminate_all([member])


def test_data_survive_a_clean_restart(mongod: EmulatorProcess, client: MongoClient[dict[str, Any]]) -> None:
    client.durable.docs.insert_many([{"_id": i} for i in range(10)])
    client.close()
    assert mongod.terminate() == 0
    mongod.start()
    mongod.wait_listening()
    assert RawClient(mongod.address).run("durable", {"count": "docs"})["n"] == 10


# -- in-process units ------------------------------------------------------------------------------------------


def test_getcmdlineopts_masks_passwords_in_parsed_and_argv() -> None:
    settings = ServerSettings(
        argv=["mongod", "--tlsCertificateKeyFilePassword", "pem-secret", "--kmipClientCertificatePassword=kmip-secret"],
        parsed={
            "net": {"tls": {"certificateKeyFilePassword": "pem-secret", "mode": "requireTLS"}},
            "security": {"kmip": {"clientCertificatePassword": "kmip-secret", "serverName": "kmip1"}},
        },
    )
    shown = repr((settings.redacted_argv(), settings.redacted_parsed()))
    assert "secret" not in shown
    assert settings.redacted_parsed()["security"]["kmip"]["serverName"] == "kmip1"
    assert settings.redacted_parsed()["net"]["tls"]["mode"] == "requireTLS"


def test_scram_sha_256_round_trip_and_wrong_password() -> None:
    stored = derive_credentials("correct horse", iterations=4096)
    for password, accepted in (("correct horse", True), ("wrong", False)):
        client = ScramClientConversation("alice", password)
        server = ScramServerConversation(client.client_first())
        assert server.username == "alice"
        final = client.client_final(server.server_first(stored))
        if accepted:
            client.verify_server_final(server.server_final(final))
        else:
            with pytest.raises(ScramError):
                server.server_final(final)


@pytest.mark.parametrize(
    ("filter_doc", "expected"),
    [
        ({"a": 1}, True),
        ({"a": {"$in": [2, 1]}}, True),
        ({"tags": "x"}, True),  # array fields match any element
        ({"b.c": {"$gt": 4}}, True),
        ({"b.c": {"$lt": 4}}, False),
        ({"missing": None}, True),
        ({"missing": {"$exists": True}}, False),
        ({"$or": [{"a": 2}, {"tags": "y"}]}, True),
        ({"a": "1"}, False),  # no cross-type equality
    ],
)
def test_query_matching_follows_mongodb_semantics(filter_doc: dict[str, Any], expected: bool) -> None:
    doc = {"_id": 1, "a": 1, "tags": ["x", "y"], "b": {"c": 5}}
    assert query.matches(doc, filter_doc) is expected


@pytest.mark.parametrize(
    ("argv", "port", "db_path"),
    [
        (["--configsvr", "--replSet", "cfg"], 27019, "/data/configdb"),
        (["--shardsvr", "--replSet", "sh1"], 27018, "/data/db"),
        (["--configsvr", "--replSet", "cfg", "--port", "27017", "--dbpath", "/x"], 27017, "/x"),
    ],
)
def test_i11_cluster_role_defaults_like_mongod(argv: list[str], port: int, db_path: str) -> None:
    options = parse_args(argv)
    assert (options.net.port, options.storage.db_path) == (port, db_path)
    assert options.parsed["sharding"]["clusterRole"] in ("configsvr", "shardsvr")
    assert ServerSettings.from_options(options).cluster_role == options.parsed["sharding"]["clusterRole"]


def test_i11_cluster_role_and_i10_parameters_checked_at_start() -> None:
    with pytest.raises(OptionsError, match="Cannot start a configsvr as a standalone server"):
        parse_args(["--configsvr"])
    with pytest.raises(OptionsError, match=r"Bad value for sharding\.clusterRole"):
        parse_args(["--config", "/c.yaml"], read_file=lambda _path: "sharding:\n  clusterRole: mongos\n")
    yaml_role = parse_args(
        ["--config", "/c.yaml"],
        read_file=lambda _path: "sharding:\n  clusterRole: configsvr\nreplication:\n  replSetName: cfg\n",
    )
    assert yaml_role.net.port == 27019
    # A config server writes its periodic no-op every second, whatever periodicNoopIntervalSecs says.
    assert ServerSettings.from_options(yaml_role).periodic_noop_interval == 1.0
    bad_values = (
        "periodicNoopIntervalSecs=0",
        "periodicNoopIntervalSecs=11",
        "shutdownTimeoutMillisForSignaledShutdown=-1",
        "writePeriodicNoops=maybe",
    )
    for bad in bad_values:
        with pytest.raises(OptionsError, match="Invalid value for parameter"):
            parse_args(["--setParameter", bad])
    settings = ServerSettings.from_options(
        parse_args(
            [
                "--setParameter",
                "shutdownTimeoutMillisForSignaledShutdown=0",
                "--setParameter",
                "writePeriodicNoops=false",
            ]
        )
    )
    assert settings.parameters["shutdownTimeoutMillisForSignaledShutdown"] == 0
    assert settings.parameters["writePeriodicNoops"] is False
    assert ServerSettings.from_options(parse_args([])).parameters["periodicNoopIntervalSecs"] == 10
