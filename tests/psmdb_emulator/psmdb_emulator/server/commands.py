"""Command dispatch and the commands themselves (what pymongo, mongosh and the collection send)."""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import socket
import ssl
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bson
from bson import ObjectId
from bson.binary import Binary, UuidRepresentation

from .. import server_parameters
from ..options import VERSION, censor_argv, censor_parsed
from . import query, roles, writeconcern
from .catalog import LOCAL_DB, OPLOG, id_key
from .errors import NOT_PRIMARY_CODES, SHUTDOWN_CODES, CommandError, bad_value, retryable_write_label
from .node import USERS_COLLECTION, USERS_DB, Node
from .peer import INTERNAL_USER
from .replset import PRIMARY, SECONDARY, utcnow
from .scram import LEGACY_MECHANISM, MECHANISM, ScramError, ScramServerConversation, derive_credentials
from .wire import CODEC_OPTIONS, MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, OP_QUERY, Request

MAX_WIRE_VERSION = 21  # MongoDB 7.0
MAX_WRITE_BATCH_SIZE = 100_000
DEFAULT_BATCH_SIZE = 101
GIT_VERSION = "e5e4ea0fcd0c5e2e7d5d8e8b1a8c6d6f2f1a9b3c"
# Answered before authentication, like mongod (plus the SASL conversation itself).
NO_AUTH_COMMANDS = frozenset(
    {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo", "saslStart", "saslContinue", "logout"}
)
# mongod's localhost exception: before the first user exists, a loopback client may set the server up.
LOCALHOST_EXCEPTION_COMMANDS = frozenset({"createUser", "replSetInitiate", "replSetGetStatus", "getCmdLineOpts"})
# Reads that need secondaryOk (a non-primary read preference) on a member that is not primary.
SECONDARY_OK_COMMANDS = frozenset(
    {"find", "count", "aggregate", "distinct", "listCollections", "listDatabases", "listIndexes"}
)


@dataclass
class Connection:
    connection_id: int
    remote: str
    is_loopback: bool
    tls: bool
    users: set[tuple[str, str]] = field(default_factory=set)
    sasl: ScramServerConversation | None = None
    sasl_db: str = ""
    close_after_reply: bool = False


@dataclass
class Cursor:
    cursor_id: int
    ns: str
    remaining: list[dict[str, Any]]
    connection_id: int


class CommandContext:
    """One request being executed: the command, its connection, and helpers shared by the handlers."""

    def __init__(self, node: Node, conn: Connection, request: Request) -> None:
        self.node = node
        self.conn = conn
        self.request = request
        self.cmd = request.command
        self.db = request.db
        self.name = next(iter(self.cmd))

    @property
    def target(self) -> Any:
        return self.cmd[self.name]

    def collection_name(self) -> str:
        name = self.target
        if not isinstance(name, str) or not name:
            raise CommandError(73, f"collection name has invalid type {type(name).__name__}")
        return name

    @property
    def write_concern(self) -> dict[str, Any]:
        """The command's writeConcern, or the implicit default (w: "majority" on a replica set)."""
        return writeconcern.resolve(self.cmd.get("writeConcern"), self.node.repl)


Handler = Callable[[CommandContext], dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        for name in names:
            _HANDLERS[name] = func
        return func

    return register


def dispatch(node: Node, conn: Connection, request: Request) -> dict[str, Any]:
    """Runs one command. Whatever goes wrong, the client gets ``{ok: 0, errmsg, code, codeName}`` and keeps
    its connection, as with mongod."""
    if not request.command:
        return CommandError(59, "no command").to_reply()
    ctx = CommandContext(node, conn, request)
    handler = _HANDLERS.get(ctx.name)
    try:
        if handler is None:
            raise CommandError(59, f"no such command: '{ctx.name}'")
        _check_authorized(ctx)
        _check_cluster_time(ctx)
        _check_secondary_ok(ctx)
        _parse_write_concern(ctx.cmd.get("writeConcern"))
        reply = handler(ctx)
    except CommandError as exc:
        reply = exc.to_reply()
    except ScramError as exc:
        reply = CommandError(18, f"Authentication failed: {exc}").to_reply()
    except Exception as exc:  # a bug or unexpected input must not cost the client its connection
        reply = _unexpected_error(ctx, exc).to_reply()
    reply.setdefault("ok", 1.0)
    _decorate_reply(ctx, reply)
    return reply


def _unexpected_error(ctx: CommandContext, exc: Exception) -> CommandError:
    """mongod's closest answer for input the handlers did not expect (a missing or mistyped field)."""
    ctx.node.logger.log(
        "E",
        "COMMAND",
        99001,
        "Emulator: unexpected exception in command",
        {"command": ctx.name, "error": repr(exc), "trace": traceback.format_exc(limit=5)},
    )
    if isinstance(exc, KeyError):
        return CommandError(40414, f"BSON field '{ctx.name}.{exc.args[0]}' is missing but a required field")
    if isinstance(exc, TypeError | ValueError | AttributeError | IndexError | bson.errors.BSONError):
        return CommandError(14, f"{ctx.name}: invalid argument: {exc}")
    return CommandError(8, f"{ctx.name}: {exc}")


def _decorate_reply(ctx: CommandContext, reply: dict[str, Any]) -> None:
    """Error labels, topologyVersion on not-primary/shutdown errors, operationTime and $clusterTime
    (service_entry_point_common.cpp)."""
    node = ctx.node
    code = reply.get("code") if not reply.get("ok") else None
    wc_code = (reply.get("writeConcernError") or {}).get("code")
    retryable_write = "txnNumber" in ctx.cmd and "autocommit" not in ctx.cmd
    if retryable_write and retryable_write_label(code, wc_code):
        reply["errorLabels"] = ["RetryableWriteError"]
    if node.repl is None:
        return
    with node.lock:
        if {code, wc_code} & (NOT_PRIMARY_CODES | SHUTDOWN_CODES):
            reply.setdefault("topologyVersion", node.topology_version())
        if node.repl.config is not None:
            reply.setdefault("operationTime", node.repl.applied()["ts"])
            reply["$clusterTime"] = node.cluster_time()


def _check_cluster_time(ctx: CommandContext) -> None:
    """A client without the advanceClusterTime privilege (here: not authenticated) may only gossip a
    $clusterTime that this replica set signed."""
    gossiped = ctx.cmd.get("$clusterTime")
    if gossiped is None or not ctx.node.settings.auth_enabled or ctx.conn.users:
        return
    with ctx.node.lock:
        ctx.node.check_cluster_time(gossiped)


def _parse_write_concern(raw: Any) -> None:
    """WriteConcernOptions parsing: a malformed writeConcern fails the command before anything runs."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise CommandError(14, "writeConcern must be an object")
    w = raw.get("w", 1)
    if isinstance(w, bool) or not isinstance(w, int | float | str):
        raise CommandError(9, "w has to be a number or string")
    if isinstance(w, int | float) and not 0 <= w <= 50:
        raise CommandError(9, "w has to be a non-negative number and not greater than 50")
    wtimeout = raw.get("wtimeout", 0)
    if isinstance(wtimeout, bool) or not isinstance(wtimeout, int | float):
        raise CommandError(14, "wtimeout must be a number")
    if "j" in raw and not isinstance(raw["j"], bool | int | float):
        raise CommandError(14, "j must be numeric or a boolean value")


def _check_authorized(ctx: CommandContext) -> None:
    node = ctx.node
    if not node.settings.auth_enabled or ctx.conn.users or ctx.name in NO_AUTH_COMMANDS:
        return
    if ctx.name in LOCALHOST_EXCEPTION_COMMANDS and ctx.conn.is_loopback:
        with node.lock:
            if not node.has_users():
                return
    raise CommandError(13, f"Command {ctx.name} requires authentication")


def _check_secondary_ok(ctx: CommandContext) -> None:
    repl = ctx.node.repl
    if repl is None or ctx.name not in SECONDARY_OK_COMMANDS or ctx.db == LOCAL_DB or repl.state == PRIMARY:
        return
    if ctx.request.op_code == OP_QUERY:
        allowed = bool(ctx.request.flags & 4)
    else:
        allowed = ctx.cmd.get("$readPreference", {}).get("mode", "primary") != "primary"
    if allowed and repl.state != SECONDARY:
        raise CommandError(13436, "not primary or secondary; cannot currently read from this replSet member")
    if not allowed:
        raise CommandError(13435, "not primary and secondaryOk=false")


# -- handshake and server information --------------------------------------------------------------------------
@command("hello", "isMaster", "ismaster")
def cmd_hello(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    with node.lock:
        _refuse_in_quiesce(node)
        requested = ctx.cmd.get("topologyVersion")
        max_await = ctx.cmd.get("maxAwaitTimeMS")
        if requested is not None and max_await is not None:
            # Awaitable hello (streaming monitoring): answer when the topology changes or the wait ends.
            deadline = time.monotonic() + int(max_await) / 1000
            while (
                requested.get("processId") == node.process_id
                and requested.get("counter") == node.topology_counter
                and not node.shutdown.requested
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                node.changed.wait(remaining)
            _refuse_in_quiesce(node)  # quiesce mode answers waiting hellos with ShutdownInProgress
        reply: dict[str, Any] = {"topologyVersion": node.topology_version()}
        repl = node.repl
        writable = repl is None or (repl.state == PRIMARY and not repl.stepping_down)
        if ctx.name == "hello":
            reply["isWritablePrimary"] = writable
        else:
            reply["ismaster"] = writable
        if repl is not None:
            reply.update(repl.hello_fields())
            reply["secondary"] = repl.state == 2
        if ctx.name != "hello" and ctx.cmd.get("helloOk"):
            reply["helloOk"] = True
        reply.update(
            {
                "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
                "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
                "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
                "localTime": utcnow(),
                "logicalSessionTimeoutMinutes": 30,
                "connectionId": ctx.conn.connection_id,
                "minWireVersion": 0,
                "maxWireVersion": MAX_WIRE_VERSION,
                "readOnly": False,
            }
        )
        mechs_for = ctx.cmd.get("saslSupportedMechs")
        if isinstance(mechs_for, str) and "." in mechs_for:
            db, _, user = mechs_for.partition(".")
            if node.credentials(db, user) is not None:
                reply["saslSupportedMechs"] = [MECHANISM]
    return reply


def _refuse_in_quiesce(node: Node) -> None:
    """Quiesce mode (ReplicationCoordinatorImpl::awaitHelloResponse): clients must route elsewhere."""
    if node.in_quiesce:
        raise CommandError(
            91,
            "The server is in quiesce mode and will shut down",
            remainingQuiesceTimeMillis=node.remaining_quiesce_millis(),
        )


@command("ping")
def cmd_ping(ctx: CommandContext) -> dict[str, Any]:
    return {}


def build_info() -> dict[str, Any]:
    numbers = [int(part) for part in VERSION.replace("-", ".").split(".")]
    return {
        "version": VERSION,
        "psmdbVersion": VERSION,
        "gitVersion": GIT_VERSION,
        "versionArray": numbers[:4],
        "allocator": "tcmalloc",
        "javascriptEngine": "mozjs",
        "sysInfo": "deprecated",
        "bits": 64,
        "debug": False,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "storageEngines": ["devnull", "inMemory", "wiredTiger"],
        "modules": [],
        "openssl": {"running": ssl.OPENSSL_VERSION, "compiled": ssl.OPENSSL_VERSION},
        "buildEnvironment": {"distmod": "debian12", "distarch": platform.machine(), "target_os": "linux"},
    }


@command("buildInfo", "buildinfo")
def cmd_build_info(ctx: CommandContext) -> dict[str, Any]:
    return build_info()


@command("getCmdLineOpts")
def cmd_get_cmd_line_opts(ctx: CommandContext) -> dict[str, Any]:
    # mongod censors only redact:true options: the KMIP client certificate password is echoed
    return {"argv": censor_argv(ctx.node.settings.argv), "parsed": censor_parsed(ctx.node.settings.parsed)}


@command("serverStatus")
def cmd_server_status(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    uptime = time.monotonic() - node.started
    with node.lock:
        status: dict[str, Any] = {
            # mongod's prettyHostName(): the machine's host name, ":port" only off the default port
            "host": socket.gethostname() + ("" if node.settings.port == 27017 else f":{node.settings.port}"),
            "version": VERSION,
            "process": "mongod",
            "pid": os.getpid(),
            "uptime": float(int(uptime)),
            "uptimeMillis": int(uptime * 1000),
            "uptimeEstimate": int(uptime),
            "localTime": utcnow(),
            "connections": {
                "current": node.connection_count,
                "available": node.settings.max_incoming_connections - node.connection_count,
            },
            "storageEngine": {"name": "wiredTiger", "supportsCommittedReads": True, "persistent": True},
        }
        encryption_at_rest = node.store.encryption_status()  # None: 7.0.14-8 has no such section
        if encryption_at_rest is not None:
            status["encryptionAtRest"] = encryption_at_rest
        repl = node.repl
        if repl is not None:
            repl_section: dict[str, Any] = {
                "topologyVersion": node.topology_version(),
                "isWritablePrimary": repl.state == PRIMARY and not repl.stepping_down,
                "secondary": repl.state == 2,
            }
            repl_section.update(repl.hello_fields())
            repl_section["rbid"] = 1
            status["repl"] = repl_section
            status["electionMetrics"] = repl.metrics.server_status()
    return status


def _known_parameters(node: Node) -> dict[str, Any]:
    raw = {k: v for k, v in node.settings.parsed.get("setParameter", {}).items() if k not in server_parameters.SPECS}
    return {
        "featureCompatibilityVersion": {"version": "7.0"},
        "authenticationMechanisms": [MECHANISM],
        "authSchemaVersion": 5,
        **raw,
        **node.settings.parameters,
        # a config server always writes its periodic no-op every second
        "periodicNoopIntervalSecs": int(node.settings.periodic_noop_interval),
    }


_PARAMETER_COMMAND_FIELDS = {"$db", "lsid", "$readPreference", "$clusterTime", "comment", "writeConcern"}


@command("getParameter")
def cmd_get_parameter(ctx: CommandContext) -> dict[str, Any]:
    with ctx.node.lock:
        known = _known_parameters(ctx.node)
    if ctx.target == "*" or (isinstance(ctx.target, dict) and ctx.target.get("allParameters")):
        return known
    wanted = [k for k in ctx.cmd if k != ctx.name and k not in _PARAMETER_COMMAND_FIELDS]
    result = {k: known[k] for k in wanted if k in known}
    if not result:
        raise CommandError(72, "no option found to get")
    return result


@command("setParameter")
def cmd_set_parameter(ctx: CommandContext) -> dict[str, Any]:
    """Runtime changes of the parameters server_parameters.SPECS marks runtime-settable."""
    _admin_only(ctx)
    names = [k for k in ctx.cmd if k != ctx.name and k not in _PARAMETER_COMMAND_FIELDS]
    if not names:
        raise CommandError(72, "no option found to set, use help:true to see options ")
    updates: dict[str, server_parameters.ParameterValue] = {}
    for name in names:
        spec = server_parameters.SPECS.get(name)
        if spec is None:
            raise CommandError(72, f"attempted to set unrecognized parameter [{name}], use help:true to see options ")
        if not spec.runtime:
            raise CommandError(72, f"not allowed to change [{name}] at runtime")
        try:
            updates[name] = server_parameters.convert(spec, ctx.cmd[name])
        except server_parameters.ParameterError as exc:
            raise bad_value(str(exc)) from exc
    with ctx.node.lock:
        was = ctx.node.settings.parameters[names[0]]
        ctx.node.settings.parameters.update(updates)
    return {"was": was}


@command("hostInfo")
def cmd_host_info(ctx: CommandContext) -> dict[str, Any]:
    uname = platform.uname()
    return {
        "system": {
            "currentTime": utcnow(),
            "hostname": socket.gethostname(),
            "cpuArch": uname.machine,
            "numCores": os.cpu_count(),
        },
        "os": {"type": uname.system, "name": "Debian", "version": uname.release},
        "extra": {},
    }


@command("whatsmyuri")
def cmd_whatsmyuri(ctx: CommandContext) -> dict[str, Any]:
    return {"you": ctx.conn.remote}


@command("getLog")
def cmd_get_log(ctx: CommandContext) -> dict[str, Any]:
    if ctx.target == "*":
        return {"names": ["global", "startupWarnings"]}
    return {"totalLinesWritten": 0, "log": []}


@command("connectionStatus")
def cmd_connection_status(ctx: CommandContext) -> dict[str, Any]:
    users = [{"user": user, "db": db} for db, user in sorted(ctx.conn.users)]
    roles = [{"role": "root", "db": "admin"}] if users else []
    return {"authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": roles}}


@command("endSessions", "killSessions", "refreshSessions", "startSession")
def cmd_sessions(ctx: CommandContext) -> dict[str, Any]:
    if ctx.name == "startSession":
        return {"id": {"id": Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD)}, "timeoutMinutes": 30}
    return {}


# -- authentication ------------------------------------------------------------------------------------------------
@command("saslStart")
def cmd_sasl_start(ctx: CommandContext) -> dict[str, Any]:
    mechanism = ctx.cmd.get("mechanism")
    # mongod's default authenticationMechanisms is SCRAM-SHA-1,SCRAM-SHA-256. Drivers fall back to
    # SCRAM-SHA-1 when hello lists no saslSupportedMechs for the user (an unknown user), so an
    # unknown user must fail as AuthenticationFailed whichever of the two is asked for.
    if mechanism not in (MECHANISM, LEGACY_MECHANISM):
        raise CommandError(
            334,
            f"Received authentication for mechanism {mechanism} which is not enabled",
            codeName="MechanismUnavailable",
        )
    conversation = ScramServerConversation(bytes(ctx.cmd["payload"]))
    with ctx.node.lock:
        credentials = ctx.node.credentials(ctx.db, conversation.username)
    if credentials is not None and mechanism == LEGACY_MECHANISM:
        # The emulator stores SCRAM-SHA-256 credentials only (createUser's mechanisms default of
        # mongod would add SCRAM-SHA-1 ones too); hello announces only SCRAM-SHA-256 for them.
        raise CommandError(
            334,
            f"Unable to use {LEGACY_MECHANISM} based authentication for user without any "
            f"{LEGACY_MECHANISM} credentials registered",
            codeName="MechanismUnavailable",
        )
    if credentials is None:
        ctx.node.logger.log(
            "I",
            "ACCESS",
            20249,
            "Authentication failed",
            {"mechanism": mechanism, "user": conversation.username, "db": ctx.db, "error": "UserNotFound"},
        )
        raise CommandError(18, "Authentication failed.")
    ctx.conn.sasl = conversation
    ctx.conn.sasl_db = ctx.db
    return {"conversationId": 1, "done": False, "payload": Binary(conversation.server_first(credentials))}


@command("saslContinue")
def cmd_sasl_continue(ctx: CommandContext) -> dict[str, Any]:
    conversation = ctx.conn.sasl
    if conversation is None:
        raise CommandError(17, "No SASL session state found", codeName="ProtocolError")
    if not bytes(ctx.cmd.get("payload", b"")):
        return {"conversationId": 1, "done": True, "payload": Binary(b"")}  # the optional empty final round
    ctx.conn.sasl = None
    try:
        server_final = conversation.server_final(bytes(ctx.cmd["payload"]))
    except ScramError as exc:
        ctx.node.logger.log(
            "I",
            "ACCESS",
            20249,
            "Authentication failed",
            {"mechanism": MECHANISM, "user": conversation.username, "db": ctx.conn.sasl_db, "error": str(exc)},
        )
        raise CommandError(18, "Authentication failed.") from exc
    ctx.conn.users.add((ctx.conn.sasl_db, conversation.username))
    if conversation.username != INTERNAL_USER:
        ctx.node.logger.log(
            "I",
            "ACCESS",
            5286306,
            "Successfully authenticated",
            {"mechanism": MECHANISM, "user": conversation.username, "db": ctx.conn.sasl_db, "client": ctx.conn.remote},
        )
    return {"conversationId": 1, "done": True, "payload": Binary(server_final)}


@command("logout")
def cmd_logout(ctx: CommandContext) -> dict[str, Any]:
    ctx.conn.users = {u for u in ctx.conn.users if u[0] != ctx.db}
    return {}


@command("createUser")
def cmd_create_user(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    user = ctx.target
    password = ctx.cmd.get("pwd")
    if not isinstance(user, str) or not user:
        raise bad_value("User name must be a non-empty string")
    if not isinstance(password, str) or not password:
        raise bad_value(
            "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db"
        )
    mechanisms = ctx.cmd.get("mechanisms", [MECHANISM])
    if mechanisms != [MECHANISM]:
        raise bad_value(f"the emulator supports only {MECHANISM} credentials")
    roles = [{"role": r, "db": ctx.db} if isinstance(r, str) else dict(r) for r in ctx.cmd.get("roles", [])]
    credentials = derive_credentials(password)  # outside the lock: PBKDF2 takes a while
    with node.lock:
        node.check_writable(USERS_DB)
        if node.user_document(ctx.db, user) is not None:
            raise CommandError(51, f'User "{user}@{ctx.db}" already exists')
        doc = {
            "_id": f"{ctx.db}.{user}",
            "userId": Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD),
            "user": user,
            "db": ctx.db,
            "credentials": {MECHANISM: credentials.to_document()},
            "roles": roles,
        }
        if "customData" in ctx.cmd:
            doc["customData"] = ctx.cmd["customData"]
        optime = _insert_logged(ctx, USERS_DB, USERS_COLLECTION, doc)
    return _with_write_concern(ctx, optime, {})


@command("dropUser")
def cmd_drop_user(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    with node.lock:
        node.check_writable(USERS_DB)
        doc_id = f"{ctx.db}.{ctx.target}"
        if node.user_document(ctx.db, ctx.target) is None:
            raise CommandError(11, f"User '{ctx.target}@{ctx.db}' not found")
        node.catalog.delete(USERS_DB, USERS_COLLECTION, doc_id)
        optime = node.log_op({"op": "d", "ns": f"{USERS_DB}.{USERS_COLLECTION}", "o": {"_id": doc_id}})
    return _with_write_concern(ctx, optime, {})


@command("usersInfo")
def cmd_users_info(ctx: CommandContext) -> dict[str, Any]:
    with ctx.node.lock:
        docs = ctx.node.catalog.documents(USERS_DB, USERS_COLLECTION)
    wanted = ctx.target
    users = []
    for doc in docs:
        if wanted == 1 and doc["db"] != ctx.db:
            continue
        if isinstance(wanted, str) and (doc["user"], doc["db"]) != (wanted, ctx.db):
            continue
        if isinstance(wanted, dict) and (doc["user"], doc["db"]) != (wanted.get("user"), wanted.get("db")):
            continue
        users.append({k: v for k, v in doc.items() if k != "credentials"} | {"mechanisms": list(doc["credentials"])})
    return {"users": users}


# -- writes ------------------------------------------------------------------------------------------------------
def _ns(db: str, coll: str) -> str:
    return f"{db}.{coll}"


def _validate_db_name(db: str) -> None:
    if not db or any(c in db for c in '/\\. "$'):
        raise CommandError(73, f"Invalid database name: '{db}'", codeName="InvalidNamespace")


def _ensure_collection_logged(ctx: CommandContext, db: str, coll: str) -> None:
    _validate_db_name(db)
    _, created = ctx.node.catalog.ensure_collection(db, coll)
    if created:
        ctx.node.log_op({"op": "c", "ns": f"{db}.$cmd", "o": {"create": coll}})


def _session_fields(ctx: CommandContext, stmt_id: int) -> dict[str, Any]:
    if "lsid" in ctx.cmd and "txnNumber" in ctx.cmd:
        return {"lsid": ctx.cmd["lsid"], "txnNumber": ctx.cmd["txnNumber"], "stmtId": stmt_id}
    return {}


def _already_executed(ctx: CommandContext, stmt_id: int) -> dict[str, Any] | None:
    if "lsid" in ctx.cmd and "txnNumber" in ctx.cmd:
        return ctx.node.executed_statement(ctx.cmd["lsid"], int(ctx.cmd["txnNumber"]), stmt_id)
    return None


def _insert_logged(
    ctx: CommandContext, db: str, coll: str, doc: dict[str, Any], stmt_id: int = 0
) -> dict[str, Any] | None:
    _ensure_collection_logged(ctx, db, coll)
    ctx.node.catalog.insert(db, coll, doc)
    return ctx.node.log_op(
        {"op": "i", "ns": _ns(db, coll), "o": doc, "o2": {"_id": doc["_id"]}, **_session_fields(ctx, stmt_id)}
    )


def _with_write_concern(ctx: CommandContext, optime: dict[str, Any] | None, reply: dict[str, Any]) -> dict[str, Any]:
    write_concern = ctx.write_concern
    if write_concern.get("j") or write_concern.get("w") == "majority":
        # Journaled: wait until this write is on disk (majority implies j, writeConcernMajorityJournalDefault).
        ctx.node.wait_durable(ctx.node.catalog.generation)
    error = ctx.node.wait_for_write_concern(optime, write_concern)
    if error is not None:
        reply["writeConcernError"] = error
    return reply


def _write_error(index: int, exc: CommandError) -> dict[str, Any]:
    error = {"index": index, "code": exc.code, "errmsg": exc.errmsg}
    error.update({k: v for k, v in exc.extra.items() if k in ("keyPattern", "keyValue")})
    return error


def _stmt_id(ctx: CommandContext, index: int) -> int:
    stmt_ids = ctx.cmd.get("stmtIds")
    return int(stmt_ids[index]) if isinstance(stmt_ids, list) and index < len(stmt_ids) else index


@command("insert")
def cmd_insert(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll = ctx.collection_name()
    documents = ctx.cmd.get("documents", [])
    ordered = ctx.cmd.get("ordered", True)
    n = 0
    errors: list[dict[str, Any]] = []
    optime = None
    with node.lock:
        node.check_writable(ctx.db)
        for index, doc in enumerate(documents):
            stmt_id = _stmt_id(ctx, index)
            done = _already_executed(ctx, stmt_id)
            if done is not None:
                n += done.get("n", 0)
                optime = node.last_optime()
                continue
            if "_id" not in doc:
                doc = {"_id": ObjectId(), **doc}
            try:
                optime = _insert_logged(ctx, ctx.db, coll, doc, stmt_id) or optime
                n += 1
                if node.repl is None and "txnNumber" in ctx.cmd:
                    node.record_statement(ctx.cmd["lsid"], int(ctx.cmd["txnNumber"]), stmt_id, {"n": 1})
            except CommandError as exc:
                errors.append(_write_error(index, exc))
                if ordered:
                    break
    reply: dict[str, Any] = {"n": n}
    if errors:
        reply["writeErrors"] = errors
    return _with_write_concern(ctx, optime, reply)


def _matching(ctx: CommandContext, coll: str, filter_doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [d for d in ctx.node.catalog.documents(ctx.db, coll) if query.matches(d, filter_doc)]


@command("update")
def cmd_update(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll = ctx.collection_name()
    ordered = ctx.cmd.get("ordered", True)
    n = modified = 0
    upserted: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    optime = None
    with node.lock:
        node.check_writable(ctx.db)
        for index, spec in enumerate(ctx.cmd.get("updates", [])):
            stmt_id = _stmt_id(ctx, index)
            done = _already_executed(ctx, stmt_id)
            if done is not None:
                n += done.get("n", 0)
                modified += done.get("nModified", 0)
                optime = node.last_optime()
                continue
            try:
                update = spec.get("u")
                if not isinstance(update, dict):
                    raise CommandError(9, "the emulator supports update documents, not pipelines")
                matched = _matching(ctx, coll, spec.get("q"))
                if not spec.get("multi"):
                    matched = matched[:1]
                if spec.get("multi") and not query.is_operator_update(update):
                    raise CommandError(9, "multi update is not supported for replacement-style update")
                for doc in matched:
                    new_doc = query.apply_update(doc, update)
                    n += 1
                    if new_doc != doc:
                        modified += 1
                        node.catalog.replace(ctx.db, coll, new_doc)
                        entry = {"op": "u", "ns": _ns(ctx.db, coll), "o": new_doc, "o2": {"_id": doc["_id"]}}
                        optime = node.log_op({**entry, **_session_fields(ctx, stmt_id)}) or optime
                if not matched and spec.get("upsert"):
                    seed = query.upsert_seed(spec.get("q") or {}, update)
                    new_doc = (
                        query.apply_update(seed, update)
                        if query.is_operator_update(update)
                        else {**({"_id": seed["_id"]} if "_id" in seed else {}), **update}
                    )
                    if "_id" not in new_doc:
                        new_doc = {"_id": ObjectId(), **new_doc}
                    optime = _insert_logged(ctx, ctx.db, coll, new_doc, stmt_id) or optime
                    n += 1
                    upserted.append({"index": index, "_id": new_doc["_id"]})
            except CommandError as exc:
                errors.append(_write_error(index, exc))
                if ordered:
                    break
    reply: dict[str, Any] = {"n": n, "nModified": modified}
    if upserted:
        reply["upserted"] = upserted
    if errors:
        reply["writeErrors"] = errors
    return _with_write_concern(ctx, optime, reply)


@command("delete")
def cmd_delete(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll = ctx.collection_name()
    n = 0
    optime = None
    with node.lock:
        node.check_writable(ctx.db)
        for index, spec in enumerate(ctx.cmd.get("deletes", [])):
            stmt_id = _stmt_id(ctx, index)
            done = _already_executed(ctx, stmt_id)
            if done is not None:
                n += done.get("n", 0)
                optime = node.last_optime()
                continue
            matched = _matching(ctx, coll, spec.get("q"))
            if int(spec.get("limit", 0)) == 1:
                matched = matched[:1]
            for doc in matched:
                node.catalog.delete(ctx.db, coll, doc["_id"])
                entry = {"op": "d", "ns": _ns(ctx.db, coll), "o": {"_id": doc["_id"]}, **_session_fields(ctx, stmt_id)}
                optime = node.log_op(entry) or optime
                n += 1
    return _with_write_concern(ctx, optime, {"n": n})


@command("findAndModify", "findandmodify")
def cmd_find_and_modify(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll = ctx.collection_name()
    optime = None
    with node.lock:
        node.check_writable(ctx.db)
        candidates = query.sort_documents(_matching(ctx, coll, ctx.cmd.get("query")), ctx.cmd.get("sort"))
        doc = candidates[0] if candidates else None
        last_error: dict[str, Any] = {"n": 0, "updatedExisting": False}
        value = None
        if ctx.cmd.get("remove"):
            if doc is not None:
                node.catalog.delete(ctx.db, coll, doc["_id"])
                optime = node.log_op({"op": "d", "ns": _ns(ctx.db, coll), "o": {"_id": doc["_id"]}})
                last_error = {"n": 1}
                value = doc
        else:
            update = ctx.cmd.get("update") or {}
            if doc is not None:
                new_doc = query.apply_update(doc, update)
                node.catalog.replace(ctx.db, coll, new_doc)
                optime = node.log_op({"op": "u", "ns": _ns(ctx.db, coll), "o": new_doc, "o2": {"_id": doc["_id"]}})
                last_error = {"n": 1, "updatedExisting": True}
                value = new_doc if ctx.cmd.get("new") else doc
            elif ctx.cmd.get("upsert"):
                seed = query.upsert_seed(ctx.cmd.get("query") or {}, update)
                new_doc = query.apply_update(seed, update) if query.is_operator_update(update) else dict(update)
                new_doc = new_doc if "_id" in new_doc else {"_id": ObjectId(), **new_doc}
                optime = _insert_logged(ctx, ctx.db, coll, new_doc)
                last_error = {"n": 1, "updatedExisting": False, "upserted": new_doc["_id"]}
                value = new_doc if ctx.cmd.get("new") else None
    value = query.project(value, ctx.cmd.get("fields")) if value is not None else None
    return _with_write_concern(ctx, optime, {"lastErrorObject": last_error, "value": value})


@command("create")
def cmd_create(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll = ctx.collection_name()
    with node.lock:
        node.check_writable(ctx.db)
        _validate_db_name(ctx.db)
        if node.catalog.collection(ctx.db, coll) is not None:
            raise CommandError(48, f"Collection {ctx.db}.{coll} already exists.")
        options = {
            k: v
            for k, v in ctx.cmd.items()
            if k not in ("create", "$db", "lsid", "writeConcern", "$clusterTime", "$readPreference")
        }
        node.catalog.ensure_collection(ctx.db, coll, options)
        optime = node.log_op({"op": "c", "ns": f"{ctx.db}.$cmd", "o": {"create": coll, **options}})
    return _with_write_concern(ctx, optime, {})


@command("drop")
def cmd_drop(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll = ctx.collection_name()
    with node.lock:
        node.check_writable(ctx.db)
        existing = node.catalog.collection(ctx.db, coll)
        if existing is None:
            return {}  # 7.0: dropping a missing collection succeeds
        node.catalog.drop_collection(ctx.db, coll)
        optime = node.log_op({"op": "c", "ns": f"{ctx.db}.$cmd", "o": {"drop": coll}})
    return _with_write_concern(ctx, optime, {"nIndexesWas": len(existing.indexes), "ns": _ns(ctx.db, coll)})


@command("dropDatabase")
def cmd_drop_database(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    with node.lock:
        node.check_writable(ctx.db)
        if ctx.db == LOCAL_DB and node.repl is not None:
            raise CommandError(20, "Cannot drop 'local' database while replication is active")
        node.catalog.drop_database(ctx.db)
        optime = node.log_op({"op": "c", "ns": f"{ctx.db}.$cmd", "o": {"dropDatabase": 1}})
    return _with_write_concern(ctx, optime, {"dropped": ctx.db})


@command("createIndexes")
def cmd_create_indexes(ctx: CommandContext) -> dict[str, Any]:
    node = ctx.node
    coll_name = ctx.collection_name()
    with node.lock:
        node.check_writable(ctx.db)
        existed = node.catalog.collection(ctx.db, coll_name) is not None
        _ensure_collection_logged(ctx, ctx.db, coll_name)
        coll = node.catalog.collection(ctx.db, coll_name)
        assert coll is not None
        before = len(coll.indexes)
        optime = None
        for spec in ctx.cmd.get("indexes", []):
            if any(i["name"] == spec["name"] for i in coll.indexes):
                continue
            # Secondary indexes are recorded (listIndexes shows them) but not used or enforced.
            coll.indexes.append({"v": 2, **spec})
            node.catalog.mark_dirty(ctx.db)
            optime = node.log_op({"op": "c", "ns": f"{ctx.db}.$cmd", "o": {"createIndexes": coll_name, **spec}})
        after = len(coll.indexes)
    return _with_write_concern(
        ctx,
        optime,
        {"numIndexesBefore": before, "numIndexesAfter": after, "createdCollectionAutomatically": not existed},
    )


# -- reads -------------------------------------------------------------------------------------------------------
def _cursor_reply(
    ctx: CommandContext, ns: str, docs: list[dict[str, Any]], batch_size: int | None, single: bool = False
) -> dict[str, Any]:
    size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    first, rest = docs[:size], docs[size:]
    cursor_id = 0
    if rest and not single:
        cursor_id = secrets.randbits(62) + 1
        with ctx.node.lock:
            ctx.node.cursors[cursor_id] = Cursor(cursor_id, ns, rest, ctx.conn.connection_id)
    return {"cursor": {"firstBatch": first, "id": cursor_id, "ns": ns}}


def _read_documents(ctx: CommandContext, coll: str) -> list[dict[str, Any]]:
    with ctx.node.lock:
        return list(ctx.node.catalog.documents(ctx.db, coll))


@command("find")
def cmd_find(ctx: CommandContext) -> dict[str, Any]:
    coll = ctx.collection_name()
    docs = [d for d in _read_documents(ctx, coll) if query.matches(d, ctx.cmd.get("filter"))]
    docs = query.sort_documents(docs, ctx.cmd.get("sort"))
    skip = int(ctx.cmd.get("skip", 0))
    limit = int(ctx.cmd.get("limit", 0))
    docs = docs[skip:]
    if limit:
        docs = docs[: abs(limit)]
    docs = [query.project(d, ctx.cmd.get("projection")) for d in docs]
    single = bool(ctx.cmd.get("singleBatch")) or limit < 0
    return _cursor_reply(ctx, _ns(ctx.db, coll), docs, ctx.cmd.get("batchSize"), single)


@command("getMore")
def cmd_get_more(ctx: CommandContext) -> dict[str, Any]:
    cursor_id = int(ctx.target)
    with ctx.node.lock:
        cursor = ctx.node.cursors.get(cursor_id)
        if cursor is None:
            raise CommandError(43, f"cursor id {cursor_id} not found")
        size = int(ctx.cmd.get("batchSize") or len(cursor.remaining) or 1)
        batch, cursor.remaining = cursor.remaining[:size], cursor.remaining[size:]
        if not cursor.remaining:
            del ctx.node.cursors[cursor_id]
            cursor_id = 0
    return {"cursor": {"nextBatch": batch, "id": cursor_id, "ns": cursor.ns}}


@command("killCursors")
def cmd_kill_cursors(ctx: CommandContext) -> dict[str, Any]:
    killed, missing = [], []
    with ctx.node.lock:
        for cursor_id in ctx.cmd.get("cursors", []):
            (killed if ctx.node.cursors.pop(int(cursor_id), None) else missing).append(cursor_id)
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": []}


@command("count")
def cmd_count(ctx: CommandContext) -> dict[str, Any]:
    docs = [d for d in _read_documents(ctx, ctx.collection_name()) if query.matches(d, ctx.cmd.get("query"))]
    docs = docs[int(ctx.cmd.get("skip", 0)) :]
    limit = int(ctx.cmd.get("limit", 0))
    return {"n": len(docs[: abs(limit)] if limit else docs)}


@command("distinct")
def cmd_distinct(ctx: CommandContext) -> dict[str, Any]:
    values: list[Any] = []
    for doc in _read_documents(ctx, ctx.collection_name()):
        if query.matches(doc, ctx.cmd.get("query")):
            value = query.get_path(doc, ctx.cmd["key"])
            for item in value if isinstance(value, list) else [value]:
                if item is not query._MISSING and all(query.compare(item, v) != 0 for v in values):
                    values.append(item)
    return {"values": values}


def _accumulate(operator: str, argument: Any, docs: list[dict[str, Any]]) -> Any:
    def evaluate(doc: dict[str, Any]) -> Any:
        if isinstance(argument, str) and argument.startswith("$"):
            value = query.get_path(doc, argument[1:])
            return None if value is query._MISSING else value
        return argument

    values = [evaluate(d) for d in docs]
    if operator == "$sum":
        return sum(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    if operator == "$first":
        return values[0] if values else None
    if operator == "$last":
        return values[-1] if values else None
    if operator in ("$max", "$min"):
        present = [v for v in values if v is not None]
        if not present:
            return None
        chooser = max if operator == "$max" else min
        return chooser(present, key=query.sort_key)
    if operator == "$push":
        return values
    if operator == "$avg":
        numbers = [v for v in values if isinstance(v, int | float)]
        return sum(numbers) / len(numbers) if numbers else None
    raise CommandError(15952, f"unknown group operator '{operator}'")


def run_pipeline(docs: list[dict[str, Any]], pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for stage in pipeline:
        ((name, spec),) = stage.items()
        if name == "$match":
            docs = [d for d in docs if query.matches(d, spec)]
        elif name == "$sort":
            docs = query.sort_documents(docs, spec)
        elif name == "$skip":
            docs = docs[int(spec) :]
        elif name == "$limit":
            docs = docs[: int(spec)]
        elif name == "$project":
            docs = [query.project(d, spec) for d in docs]
        elif name == "$count":
            docs = [{spec: len(docs)}] if docs else []
        elif name == "$group":
            key_spec = spec["_id"]
            groups: dict[bytes, tuple[Any, list[dict[str, Any]]]] = {}
            for doc in docs:
                key = _accumulate("$first", key_spec, [doc]) if isinstance(key_spec, str) else key_spec
                groups.setdefault(id_key(key), (key, []))[1].append(doc)
            docs = [
                {
                    "_id": key,
                    **{
                        field_name: _accumulate(*next(iter(acc.items())), members)
                        for field_name, acc in spec.items()
                        if field_name != "_id"
                    },
                }
                for key, members in groups.values()
            ]
        else:
            raise CommandError(40324, f"Unrecognized pipeline stage name: '{name}'")
    return docs


def _coll_stats_stage(ctx: CommandContext, spec: dict[str, Any]) -> dict[str, Any]:
    """``{$collStats: {storageStats: {scale}, count: {}}}`` as the first stage (what mongosh's stats() sends)."""
    document: dict[str, Any] = {
        "ns": _ns(ctx.db, ctx.target),
        "host": f"{socket.gethostname()}:{ctx.node.settings.port}",
        "localTime": utcnow(),
    }
    with ctx.node.lock:
        if "storageStats" in spec:
            scale = int((spec["storageStats"] or {}).get("scale", 1) or 1)
            document["storageStats"] = storage_stats(ctx.node, ctx.db, ctx.target, scale)
        if "count" in spec:
            stats = ctx.node.catalog.collection_stats(ctx.db, ctx.target)
            document["count"] = stats["count"] if stats else 0
    return document


@command("aggregate")
def cmd_aggregate(ctx: CommandContext) -> dict[str, Any]:
    if not isinstance(ctx.target, str):
        raise CommandError(9, "the emulator supports only collection aggregations")
    pipeline = ctx.cmd.get("pipeline", [])
    if pipeline and "$collStats" in pipeline[0]:
        docs = run_pipeline([_coll_stats_stage(ctx, pipeline[0]["$collStats"])], pipeline[1:])
    else:
        docs = run_pipeline(_read_documents(ctx, ctx.target), pipeline)
    batch_size = (ctx.cmd.get("cursor") or {}).get("batchSize")
    return _cursor_reply(ctx, _ns(ctx.db, ctx.target), docs, batch_size)


@command("listDatabases")
def cmd_list_databases(ctx: CommandContext) -> dict[str, Any]:
    with ctx.node.lock:
        names = ctx.node.catalog.database_names()
        sizes = {name: ctx.node.catalog.data_size(name) for name in names}
    filter_doc = ctx.cmd.get("filter")
    databases = [{"name": n, "sizeOnDisk": max(sizes[n], 4096), "empty": sizes[n] == 0} for n in names]
    databases = [d for d in databases if query.matches(d, filter_doc)]
    if ctx.cmd.get("nameOnly"):
        return {"databases": [{"name": d["name"]} for d in databases]}
    total = sum(d["sizeOnDisk"] for d in databases)
    return {"databases": databases, "totalSize": total, "totalSizeMb": total // (1024 * 1024)}


@command("listCollections")
def cmd_list_collections(ctx: CommandContext) -> dict[str, Any]:
    with ctx.node.lock:
        collections = dict(ctx.node.catalog.dbs.get(ctx.db, {}))
        infos = [
            {
                "name": name,
                "type": "collection",
                "options": coll.options,
                "info": {"readOnly": False},
                "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            }
            for name, coll in collections.items()
        ]
        if ctx.db == LOCAL_DB and ctx.node.repl is not None:
            infos.append(
                {"name": OPLOG, "type": "collection", "options": {"capped": True}, "info": {"readOnly": False}}
            )
    infos = [i for i in infos if query.matches(i, ctx.cmd.get("filter"))]
    if ctx.cmd.get("nameOnly"):
        infos = [{"name": i["name"], "type": i["type"]} for i in infos]
    return _cursor_reply(ctx, f"{ctx.db}.$cmd.listCollections", infos, (ctx.cmd.get("cursor") or {}).get("batchSize"))


@command("listIndexes")
def cmd_list_indexes(ctx: CommandContext) -> dict[str, Any]:
    coll_name = ctx.collection_name()
    with ctx.node.lock:
        coll = ctx.node.catalog.collection(ctx.db, coll_name)
        if coll is None:
            raise CommandError(26, f"ns does not exist: {ctx.db}.{coll_name}")
        indexes = list(coll.indexes)
    return _cursor_reply(ctx, _ns(ctx.db, coll_name), indexes, (ctx.cmd.get("cursor") or {}).get("batchSize"))


def storage_stats(node: Node, db: str, coll: str, scale: int = 1) -> dict[str, Any]:
    """collStats' sizes (``$collStats.storageStats``): ``size`` is the documents' BSON bytes, ``maxSize`` a capped
    collection's maximum (the oplog's: mongosh's rs.printReplicationInfo() reads it). Lock held."""
    stats = node.catalog.collection_stats(db, coll)
    if stats is None:
        raise CommandError(26, f"Collection [{db}.{coll}] not found.")
    size = int(stats["size"])
    result: dict[str, Any] = {"size": size // scale, "count": stats["count"]}
    if stats["count"]:
        result["avgObjSize"] = size // stats["count"]
    result.update({"storageSize": size // scale, "freeStorageSize": 0, "capped": stats["capped"]})
    if "maxSize" in stats:
        result["maxSize"] = int(stats["maxSize"]) // scale
    result.update({"nindexes": stats["nindexes"], "totalIndexSize": 0, "totalSize": size // scale})
    result["scaleFactor"] = scale
    return result


@command("collStats", "dbStats")
def cmd_stats(ctx: CommandContext) -> dict[str, Any]:
    with ctx.node.lock:
        if ctx.name == "dbStats":
            collections = ctx.node.catalog.dbs.get(ctx.db, {})
            return {
                "db": ctx.db,
                "collections": len(collections),
                "objects": sum(len(c.docs) for c in collections.values()),
                "dataSize": float(ctx.node.catalog.data_size(ctx.db)),
            }
        name = ctx.collection_name()
        scale = int(ctx.cmd.get("scale", 1) or 1)
        return {"ns": _ns(ctx.db, name), **storage_stats(ctx.node, ctx.db, name, scale)}


# -- replication ---------------------------------------------------------------------------------------------------
def _repl(ctx: CommandContext) -> Any:
    if ctx.node.repl is None:
        raise CommandError(76, "not running with --replSet")
    return ctx.node.repl


def _admin_only(ctx: CommandContext) -> None:
    if ctx.db != "admin":
        raise CommandError(13, f"{ctx.name} may only be run against the admin database.")


@command("replSetInitiate")
def cmd_repl_set_initiate(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    config = ctx.target if isinstance(ctx.target, dict) else None
    _repl(ctx).initiate(config)
    return {}


@command("replSetGetStatus")
def cmd_repl_set_get_status(ctx: CommandContext) -> dict[str, Any]:
    """``initialSync`` (bool or number, default true): initialSyncStatus while an initial sync runs
    (repl_set_get_status_cmd.cpp; jstest initial_sync_replSetGetStatus.js)."""
    _admin_only(ctx)
    include = ctx.cmd.get("initialSync", True)
    if not isinstance(include, bool | int | float):
        raise CommandError(14, 'Expected boolean or number type for field "initialSync"')
    with ctx.node.lock:
        return _repl(ctx).status(include_initial_sync=bool(include))


@command("replSetGetConfig")
def cmd_repl_set_get_config(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    repl = _repl(ctx)
    with ctx.node.lock:
        if repl.config is None:
            raise CommandError(94, "no replset config has been received")
        return {"config": repl.config}


@command("replSetStepDown")
def cmd_repl_set_step_down(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    step_down_secs = float(
        ctx.target if isinstance(ctx.target, int | float) and not isinstance(ctx.target, bool) else 60
    )
    catch_up = float(ctx.cmd.get("secondaryCatchUpPeriodSecs", min(10.0, step_down_secs)))
    _repl(ctx).step_down(step_down_secs, catch_up, bool(ctx.cmd.get("force")))
    return {}


@command("replSetStepUp")
def cmd_repl_set_step_up(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    skip_dry_run = bool(ctx.cmd.get("skipDryRun"))
    reason = "stepUpRequestSkipDryRun" if skip_dry_run else "stepUpRequest"  # StartElectionReason
    if not _repl(ctx).run_election(reason, skip_dry_run=skip_dry_run):
        raise CommandError(125, "Election failed.", codeName="CommandFailed")
    return {}


@command("replSetFreeze")
def cmd_repl_set_freeze(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    return _repl(ctx).freeze(float(ctx.target))


@command("replSetReconfig")
def cmd_repl_set_reconfig(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    if not isinstance(ctx.target, dict):
        raise bad_value("replSetReconfig needs a configuration document")
    _repl(ctx).reconfig(ctx.target, bool(ctx.cmd.get("force")))
    return {}


@command("replSetHeartbeat")
def cmd_repl_set_heartbeat(ctx: CommandContext) -> dict[str, Any]:
    repl = _repl(ctx)
    with ctx.node.lock:
        return repl.heartbeat_reply(ctx.cmd)


@command("replSetRequestVotes")
def cmd_repl_set_request_votes(ctx: CommandContext) -> dict[str, Any]:
    repl = _repl(ctx)
    with ctx.node.lock:
        return repl.vote_reply(ctx.cmd)


@command("emuFetchOplog")
def cmd_emu_fetch_oplog(ctx: CommandContext) -> dict[str, Any]:
    repl = _repl(ctx)
    with ctx.node.lock:
        return repl.fetch_reply(ctx.cmd)


@command("emuOplogContains")
def cmd_emu_oplog_contains(ctx: CommandContext) -> dict[str, Any]:
    repl = _repl(ctx)
    with ctx.node.lock:
        return repl.oplog_contains_reply(ctx.cmd)


@command("emuCloneBatch")
def cmd_emu_clone_batch(ctx: CommandContext) -> dict[str, Any]:
    """Emulator-internal: initial sync's resumable collection scan (mongod uses find with $_resumeAfter)."""
    repl = _repl(ctx)
    with ctx.node.lock:
        return repl.clone_batch_reply(ctx.cmd)


@command("emuFetchDocument")
def cmd_emu_fetch_document(ctx: CommandContext) -> dict[str, Any]:
    with ctx.node.lock:
        coll = ctx.node.catalog.collection(ctx.cmd["db"], ctx.target)
        document = coll.docs.get(id_key(ctx.cmd["_id"])) if coll else None
    return {"document": document}


@command("replSetMaintenance")
def cmd_repl_set_maintenance(ctx: CommandContext) -> dict[str, Any]:
    _admin_only(ctx)
    _repl(ctx).set_maintenance(bool(ctx.target))
    return {}


@command("getDefaultRWConcern")
def cmd_get_default_rw_concern(ctx: CommandContext) -> dict[str, Any]:
    """No default was ever set (setDefaultRWConcern is not emulated): mongod reports the implicit ones."""
    _admin_only(ctx)
    if ctx.node.repl is None:
        raise CommandError(51300, "'getDefaultRWConcern' is not supported on standalone nodes.")
    if ctx.node.settings.cluster_role == "shardsvr":
        raise CommandError(51301, "'getDefaultRWConcern' is not supported on shard nodes.")
    with ctx.node.lock:
        default = writeconcern.implicit_default(ctx.node.repl)
    return {
        "defaultReadConcern": {"level": "local"},
        "defaultWriteConcern": default,
        "defaultWriteConcernSource": "implicit",
        "defaultReadConcernSource": "implicit",
        "localUpdateWallClockTime": utcnow(),
    }


@command("rolesInfo")
def cmd_roles_info(ctx: CommandContext) -> dict[str, Any]:
    target = ctx.target
    if not (target in (1, 1.0) or isinstance(target, str | dict | list)):
        raise CommandError(14, "rolesInfo must be 1, a role name, a role document or an array of them")
    show_builtin = bool(ctx.cmd.get("showBuiltinRoles"))
    show_privileges = bool(ctx.cmd.get("showPrivileges"))
    return {"roles": roles.roles_info(ctx.db, target, show_builtin, show_privileges)}


@command("dbHash", "dbhash")
def cmd_db_hash(ctx: CommandContext) -> dict[str, Any]:
    """dbhash.cpp: an md5 per collection over its documents in _id order, and one over those hashes."""
    started = time.monotonic()
    wanted = ctx.cmd.get("collections")
    with ctx.node.lock:
        snapshot = {
            name: (list(coll.docs.values()), bool(coll.options.get("capped")))
            for name, coll in ctx.node.catalog.dbs.get(ctx.db, {}).items()
            if name != "system.profile" and (wanted is None or name in wanted)
        }
    collections: dict[str, str] = {}
    for name in sorted(snapshot):
        digest = hashlib.md5(usedforsecurity=False)
        for doc in sorted(snapshot[name][0], key=lambda d: query.sort_key(d["_id"])):
            digest.update(bson.encode(doc, codec_options=CODEC_OPTIONS))
        collections[name] = digest.hexdigest()
    overall = hashlib.md5(usedforsecurity=False)
    for name in sorted(collections):
        overall.update(collections[name].encode())
    return {
        "host": f"{socket.gethostname()}:{ctx.node.settings.port}",
        "collections": collections,
        "capped": sorted(name for name, (_docs, capped) in snapshot.items() if capped),
        # Collections have no UUID in the emulator: a name-based one, equal on every member.
        "uuids": {
            name: Binary.from_uuid(uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.db}.{name}"), UuidRepresentation.STANDARD)
            for name in collections
        },
        "md5": overall.hexdigest(),
        "timeMillis": int((time.monotonic() - started) * 1000),
        "fromCache": [],
    }


@command("shutdown")
def cmd_shutdown(ctx: CommandContext) -> dict[str, Any]:
    """mongod's shutdown command (commands/shutdown_d.cpp): a primary steps down first, waiting up to
    timeoutSecs (default 15) for a caught-up secondary; if that fails the command fails, unless force, and
    nothing shuts down. What is left of timeoutSecs is the quiesce time (if the member is then SECONDARY).
    The caller gets no reply: its connection ends when the process does."""
    _admin_only(ctx)
    node = ctx.node
    if not node.settings.auth_enabled and not ctx.conn.is_loopback:
        raise CommandError(13, "shutdown must run from localhost when running db without auth")
    force = bool(ctx.cmd.get("force"))
    timeout_secs = ctx.cmd.get("timeoutSecs", 15)
    if isinstance(timeout_secs, bool) or not isinstance(timeout_secs, int | float) or timeout_secs < 0:
        raise CommandError(14, "timeoutSecs must be a non-negative number")
    started = time.monotonic()
    if node.repl is not None:
        try:
            node.repl.step_down_for_shutdown(float(timeout_secs), signaled=False)
        except CommandError as exc:
            if not force:
                raise
            node.logger.log("W", "COMMAND", 4719000, "Error stepping down during force shutdown", {"error": exc.errmsg})
    node.logger.log(
        "I",
        "COMMAND",
        4695400,
        "Terminating via shutdown command",
        {"force": force, "timeoutMillis": int(float(timeout_secs) * 1000)},
    )
    with node.lock:
        if node.command_quiesce_seconds is None and not node.shutdown.requested:
            node.command_quiesce_seconds = max(0.0, float(timeout_secs) - (time.monotonic() - started))
        node.shutdown.request(0, "shutdown command")
        # Like mongod, this operation only ends when the server kills it at the end of quiesce.
        while not node.interrupted_at_shutdown:
            node.changed.wait(0.5)
    ctx.conn.close_after_reply = True
    return {}
