# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The work of ``mongod_encryption_info``: which master key a member uses, running or stopped.

Sources, each optional but storage.bson:

- ``<dbPath>/storage.bson`` (plain BSON, readable while mongod runs): the key the data is
  encrypted with, the answer when nothing else is known;
- mongod's log (29115/29116/29111 per run, read backwards, bounded);
- ``serverStatus().encryptionAtRest``, only when the build has it (PSMDB-1633, 2025; absent in
  7.0.14-8 and most deployed builds) and only from the mongod that holds this dbPath's lock;
- ``getCmdLineOpts`` of that mongod, masked: PSMDB echoes the KMIP password in ``parsed`` and
  ``argv``;
- the configured ``security.kmip`` of the config file (password masked);
- optionally the key on the KMIP server (state and dates), read with the member's own identity.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipOpsError,
    MongodError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import IntBound
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import keys as kmip_keys
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KmipClient
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import command
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import MASK
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation import state as member_state
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_config import MemberConfig
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import (
    MemberFiles,
    read_pid_file,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import (
    LogScan,
    kmip_key_id,
    scan_log,
)

INFO_ARGSPEC: dict[str, dict[str, Any]] = {
    "config": {"type": "path", "default": "/etc/mongod.conf"},
    "query_server": {"type": "bool", "default": True},
    "query_kmip": {"type": "bool", "default": False},
    "log_scan_bytes": {"type": "int", "default": 16 * 1024 * 1024},
}
#: at most 1 GiB of log is read backwards (the module holds what it reads in memory)
INFO_BOUNDS: dict[str, IntBound] = {"log_scan_bytes": IntBound(1, 2**30, "bytes of log read, at most 1 GiB")}

#: command-line flags whose next word (or ``=value``) is a secret
SECRET_FLAGS = (
    "--kmipClientCertificatePassword",
    "--tlsCertificateKeyFilePassword",
    "--tlsClusterPassword",
    "--sslPEMKeyPassword",
    "--sslClusterPassword",
)
#: the same options in getCmdLineOpts ``parsed``
SECRET_PATHS = (
    ("security", "kmip", "clientCertificatePassword"),
    ("net", "tls", "certificateKeyFilePassword"),
    ("net", "tls", "clusterPassword"),
    ("net", "ssl", "PEMKeyPassword"),
    ("net", "ssl", "clusterPassword"),
)


def mask_argv(argv: list[Any], found: list[str]) -> list[str]:
    """argv with every secret value masked; the values met are appended to ``found``."""
    masked: list[str] = []
    hide_next = False
    for raw in argv:
        word = str(raw)
        if hide_next:
            found.append(word)
            masked.append(MASK)
            hide_next = False
            continue
        flag, sep, value = word.partition("=")
        if flag in SECRET_FLAGS:
            if sep:
                found.append(value)
                masked.append(f"{flag}={MASK}")
            else:
                masked.append(word)
                hide_next = True
            continue
        masked.append(word)
    return masked


def mask_parsed(parsed: Any, found: list[str]) -> Any:
    """A copy of getCmdLineOpts ``parsed`` with every secret option masked."""
    if not isinstance(parsed, Mapping):
        return parsed
    copied = copy.deepcopy(dict(parsed))
    for path in SECRET_PATHS:
        node: Any = copied
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) not in (None, ""):
            found.append(str(node[path[-1]]))
            node[path[-1]] = MASK
    return copied


def query_server(client: Any, member: str, lock_pid: int | None, add_secret: Callable[[str], None]) -> dict[str, Any]:
    """serverStatus (pid, encryptionAtRest when the build has it) and getCmdLineOpts, masked."""
    result: dict[str, Any] = {
        "queried": True,
        "member": member,
        "pid": None,
        "same_process": None,
        "encryption_at_rest_supported": None,
        "encryption_at_rest": None,
        "command_line": None,
        "error": None,
        "error_kind": None,
    }
    try:
        status = command(client, member, "serverStatus")
        pid = status.get("pid")
        result["pid"] = int(pid) if pid is not None else None
        result["same_process"] = lock_pid is None or result["pid"] == lock_pid
        if not result["same_process"]:
            result["error"] = (
                f"the mongod at {member} is pid {result['pid']}, not pid {lock_pid} that holds this dbPath's "
                "mongod.lock: its answers are not about this member and are not used (check login_host/login_port)"
            )
            result["error_kind"] = "other_process"
            return result
        encryption = status.get("encryptionAtRest")
        result["encryption_at_rest_supported"] = encryption is not None
        result["encryption_at_rest"] = dict(encryption) if isinstance(encryption, Mapping) else None
        options = command(client, member, "getCmdLineOpts")
        found: list[str] = []
        argv = mask_argv(list(options.get("argv") or []), found)
        parsed = mask_parsed(options.get("parsed"), found)
        for secret in found:
            add_secret(secret)
        security = parsed.get("security") if isinstance(parsed, Mapping) else None
        kmip = security.get("kmip") if isinstance(security, Mapping) else None
        result["command_line"] = {
            "argv": argv,
            "config": parsed.get("config") if isinstance(parsed, Mapping) else None,
            "kmip": kmip,
            "key_identifier": kmip.get("keyIdentifier") if isinstance(kmip, Mapping) else None,
            "rotate_master_key": bool(kmip.get("rotateMasterKey")) if isinstance(kmip, Mapping) else False,
        }
    except MongodError as error:
        result["error"] = str(error)
        result["error_kind"] = error.kind
    return result


def server_key_id(server: Mapping[str, Any] | None) -> str | None:
    encryption = (server or {}).get("encryption_at_rest")
    if not isinstance(encryption, Mapping):
        return None
    return kmip_key_id(encryption.get("encryptionKeyId"))


def read_kmip_key(config: MemberConfig, key_id: str) -> dict[str, Any]:
    """The key's attributes on the KMIP server, as the member's own identity sees them."""
    try:
        client = KmipClient(config.kmip)
        session, key = client.session(lambda s: kmip_keys.read_key(s, key_id))
        session.close()
    except KmipOpsError as error:
        return {"key_identifier": key_id, "error": str(error), "error_kind": error.kind}
    return {**key.as_result(), "server": session.server, "error": None, "error_kind": None}


def problems_and_notes(
    config: MemberConfig,
    files: MemberFiles,
    scan: LogScan | None,
    server: Mapping[str, Any] | None,
    assessment: member_state.Assessment,
) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    notes: list[str] = []
    stored = files.key_id
    if assessment.state not in (member_state.OK, member_state.RUNNING, member_state.NO_DATA):
        problems.append(assessment.message)
    if config.rotate_master_key:
        problems.append(
            f"security.kmip.rotateMasterKey is set in {config.path}: mongod rotates the master key and exits at every "
            "start; remove it (kmipops.psmdb.mongod_kmip_config removes it)"
        )
    elif config.key_identifier and stored and config.key_identifier != stored:
        problems.append(
            f"security.kmip.keyIdentifier in {config.path} is {config.key_identifier} but the data is encrypted with "
            f"{stored} (storage.bson): mongod refuses to start ('The provided ... KMIP keyIdentifier is not equal to "
            "that the system is already configured with'). Remove keyIdentifier or set it to the stored id"
        )
    if config.uses_kmip is False and files.storage.encryption_kind == "kmip":
        problems.append(f"the data is encrypted with the KMIP key {stored} but {config.path} does not configure KMIP")
    from_server = server_key_id(server)
    if from_server is not None and stored is not None and from_server != stored:
        problems.append(f"serverStatus().encryptionAtRest names {from_server} but storage.bson names {stored}")
    if server and server.get("queried") and server.get("encryption_at_rest_supported") is False:
        notes.append(
            "this mongod build has no serverStatus().encryptionAtRest (PSMDB 7.0.14-8 and most 6.0/7.0 builds): "
            "the key in use is read from storage.bson and mongod's log"
        )
    if scan is not None and scan.key_in_use is not None and stored is not None and scan.key_in_use != stored:
        notes.append(
            f"the newest run in mongod's log used {scan.key_in_use} while storage.bson names {stored}; the log may "
            "be older than the data (restored dbPath, rotated log) - storage.bson is what mongod reads at start"
        )
    if files.key_db_rotated.present:
        notes.append(
            f"{files.key_db_rotated.path} is the keystore under the master key before the last rotation: it and every "
            "backup taken before that rotation need the old key, keep it on the KMS"
        )
    if files.lock.unclean_shutdown and not files.lock.held:
        notes.append(f"{files.lock.path} still names pid {files.lock.pid}: mongod did not shut down cleanly last time")
    if config.log_destination != "file":
        notes.append("mongod logs to " + (config.log_destination or "stdout") + ": its log was not read")
    return problems, notes


def gather(
    config: MemberConfig,
    log_scan_bytes: int,
    *,
    query: Callable[[int | None], dict[str, Any]] | None,
    query_kmip: bool,
) -> dict[str, Any]:
    """The whole report. ``query(lock_pid)`` asks the running mongod (None: do not ask)."""
    if log_scan_bytes <= 0:
        raise InvalidOptionError("log_scan_bytes", f"must be a positive number of bytes, got {log_scan_bytes}")
    files = MemberFiles.inspect(config.db_path)
    running = bool(files.lock.held)
    pid_file = read_pid_file(config.pid_file) if config.pid_file else None
    scan = scan_log(config.log_path, log_scan_bytes) if config.log_destination == "file" and config.log_path else None
    running_pid = files.lock.pid if running else None
    running_rotation = bool(
        running and scan is not None and any(run.pid == running_pid and run.rotation for run in scan.runs)
    )
    assessment = member_state.assess(files, scan, running_rotation)
    server: dict[str, Any] | None = None
    if running and query is not None:
        server = query(files.lock.pid)
    elif query is not None:
        server = {"queried": False, "reason": "mongod is not running (its dbPath's mongod.lock is not held)"}
    stored = files.key_id
    from_server = server_key_id(server)
    problems, notes = problems_and_notes(config, files, scan, server, assessment)
    result: dict[str, Any] = {
        "changed": False,
        "config": config.path,
        "db_path": config.db_path,
        "key_identifier": from_server or stored,
        "key_identifier_sources": {
            "storage_bson": stored,
            "log": scan.key_in_use if scan else None,
            "server_status": from_server,
            "config": config.key_identifier,
            "command_line": ((server or {}).get("command_line") or {}).get("key_identifier"),
        },
        "running": running,
        "lock": files.lock.as_result(),
        "pid_file": pid_file.as_result() if pid_file else None,
        "storage": files.storage_result(),
        "key_db": files.key_db.as_result(),
        "key_db_rotated": {
            **files.key_db_rotated.as_result(),
            "meaning": "the keystore under the master key before the last rotation: it and every backup taken "
            "before that rotation need the old key on the KMS"
            if files.key_db_rotated.present
            else None,
        },
        "key_db_rotation": {
            **files.key_db_rotation.as_result(),
            "meaning": member_state.leftover_message(files) if files.key_db_rotation.present else None,
        },
        "member_state": assessment.as_result(),
        "configured": config.encryption_result(),
        "log": scan.as_result(running_pid) if scan else None,
        "server": server,
        "problems": problems,
        "notes": notes,
    }
    if query_kmip:
        key_id = from_server or stored
        if key_id is None:
            result["kmip_key"] = {"key_identifier": None, "error": "no KMIP key id is known for this member"}
        elif not config.uses_kmip:
            result["kmip_key"] = {"key_identifier": key_id, "error": f"{config.path} does not configure KMIP"}
        else:
            result["kmip_key"] = read_kmip_key(config, key_id)
    return result
