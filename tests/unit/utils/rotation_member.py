# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A member's files as mongod leaves them, and a scripted ``mongod`` (POSIX sh), for the unit tests
of ``_rotation`` and the rotation modules. Nothing here talks to a KMS: the script plays PSMDB's
rotation by writing its log lines and files, so every outcome (success, 29120, a kill at a named
step, fork, a start that serves instead of rotating, a hang) can be scripted.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson

from unit.utils.db_path import write_storage_bson

START = 4615611


def log_line(
    log_id: int, msg: str, attr: dict[str, Any] | None = None, t: str = "2026-11-27T23:00:00.000+00:00"
) -> str:
    line: dict[str, Any] = {
        "t": {"$date": t},
        "s": "I",
        "c": "STORAGE",
        "id": log_id,
        "ctx": "initandlisten",
        "msg": msg,
    }
    if attr:
        line["attr"] = attr
    return json.dumps(line, separators=(",", ":"))


def key(uid: str) -> dict[str, Any]:
    return {"keyManagementFacilityType": "KMIP server", "keyIdentifier": {"kmipKeyIdentifier": uid}}


def start_lines(pid: int, *, rotation: bool = False, password: str | None = None) -> list[str]:
    kmip: dict[str, Any] = {"serverName": "kmip1"}
    if rotation:
        kmip["rotateMasterKey"] = True
    if password:
        kmip["clientCertificatePassword"] = password
    return [
        log_line(START, "MongoDB starting", {"pid": pid, "port": 27017, "dbPath": "/db"}),
        log_line(21951, "Options set by command line", {"options": {"security": {"kmip": kmip}}}),
    ]


def normal_start(pid: int, uid: str, *, created: bool = False, shutdown: bool = True) -> list[str]:
    lines = start_lines(pid)
    lines.append(log_line(29116 if created else 29115, "key", key(uid)))
    lines.append(log_line(29039, "Encryption keys DB is initialized successfully"))
    lines.append(log_line(23016, "Waiting for connections", {"port": 27017}))
    if shutdown:
        lines.append(log_line(23138, "Shutting down", {"exitCode": 0}))
    return lines


def rotation(pid: int, old: str, new: str, *, generated: bool = True, complete: bool = True) -> list[str]:
    lines = start_lines(pid, rotation=True)
    lines.append(log_line(29115, "read", key(old)))
    lines.append(log_line(29039, "Encryption keys DB is initialized successfully"))
    lines.append(log_line(29116 if generated else 29115, "new key", key(new)))
    if complete:
        rotated = {"oldKeyIdentifier": {"kmipKeyIdentifier": old}, "newKeyIdentifier": {"kmipKeyIdentifier": new}}
        lines.append(log_line(29111, "Rotated master encryption key", rotated))
        lines.append(log_line(23138, "Shutting down", {"exitCode": 0}))
    return lines


ROTATE_ERROR = {
    "what": "Can't rotate master encryption key",
    "reason": {
        "what": "key saving failed",
        "reason": "saving the master key to the KMIP server failed: KMIP sessions failed for all the server hosts. "
        "No more remaining attempts.",
    },
}


def storage_bson_bytes(uid: str | None) -> bytes:
    options: dict[str, Any] = {"directoryPerDB": False, "directoryForIndexes": False}
    if uid is not None:
        options["encryption"] = {"kmip": {"keyId": uid}}
    return bson.encode({"storage": {"engine": "wiredTiger", "options": options}})


def service_user_name() -> str:
    """``nobody`` when the tests run as root (so the module drops privileges), else the current user."""
    return "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@dataclass
class FakeMember:
    root: Path
    user: str

    @property
    def config(self) -> Path:
        return self.root / "mongod.conf"

    @property
    def db(self) -> Path:
        return self.root / "db"

    @property
    def log(self) -> Path:
        return self.root / "log" / "mongod.log"

    @property
    def mongod(self) -> Path:
        return self.root / "bin" / "mongod"

    def write_config(
        self,
        *,
        key_identifier: str | None = None,
        password: str | None = None,
        fork: bool = False,
        log: str | None = "file",
        extra: str = "",
    ) -> None:
        kmip = [
            "    serverName: kmip1.example.com,kmip2.example.com",
            "    serverCAFile: /etc/mongod/ca.pem",
            "    clientCertificateFile: /etc/mongod/client.pem",
        ]
        if key_identifier:
            kmip.append(f'    keyIdentifier: "{key_identifier}"')
        if password:
            kmip.append(f'    clientCertificatePassword: "{password}"')
        system_log = {
            "file": f"systemLog:\n  destination: file\n  path: {self.log}\n  logAppend: true\n",
            "syslog": "systemLog:\n  destination: syslog\n",
            None: "",
        }[log]
        fork_text = (
            f"processManagement:\n  fork: true\n  pidFilePath: {self.root / 'run' / 'mongod.pid'}\n" if fork else ""
        )
        self.config.write_text(
            "# member\n"
            f"storage:\n  dbPath: {self.db}\n"
            f"{system_log}{fork_text}"
            "net:\n  port: 27017\n  bindIp: 127.0.0.1\n"
            "security:\n  enableEncryption: true\n  kmip:\n" + "\n".join(kmip) + "\n" + extra
        )
        self._own(self.config)

    def write_log(self, lines: list[str]) -> None:
        with open(self.log, "a", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
        self._own(self.log)

    def script(self, body: str) -> None:
        """The scripted mongod: ``$CONFIG`` is the file after --config, ``$ARGS`` all arguments."""
        self.mongod.write_text(
            "#!/bin/sh\n"
            'ARGS="$*"\n'
            'CONFIG="$2"\n'
            f"DB={shlex.quote(str(self.db))}\n"
            f"LOG={shlex.quote(str(self.log))}\n"
            f"ROOT={shlex.quote(str(self.root))}\n"
            'log() { printf \'%s\\n\' "$1" >> "$LOG"; }\n' + body
        )
        self.mongod.chmod(0o755)

    def _own(self, path: Path) -> None:
        entry = pwd.getpwnam(self.user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def make_member(key_id: str | None = "1", *, rotated: bool = False, user: str | None = None) -> FakeMember:
    """A member in a fresh directory under the system temp dir, owned by the service user.

    Not under pytest's tmp_path: that is private to root, and the service user must reach it.
    """
    user = user or service_user_name()
    root = Path(tempfile.mkdtemp(prefix="kmipops-unit-member-"))
    root.chmod(0o755)
    member = FakeMember(root, user)
    for name in ("db", "log", "bin", "run", "out"):
        (root / name).mkdir(mode=0o755)
    write_storage_bson(member.db, {"kmip": {"keyId": key_id}} if key_id else None, data_files=True)
    (member.db / "key.db").mkdir()
    (member.db / "key.db" / "keystore.wt").write_bytes(b"keystore under " + (key_id or "").encode())
    if rotated:
        (member.db / "key.db.rotated").mkdir()
        (member.db / "key.db.rotated" / "keystore.wt").write_bytes(b"keystore under 0")
    (member.db / "mongod.lock").write_bytes(b"")
    member.write_config()
    member.log.write_text("")
    entry = pwd.getpwnam(user)
    for path in [root / "db", root / "log", root / "run", root / "out", *(root / "db").rglob("*"), member.log]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return member


#: a rotation as PSMDB does it, scripted: the new storage.bson is prepared by the test in $ROOT/new-storage.bson
ROTATE_OK = """
PID=$$
T='"t":{"$date":"2026-11-27T23:00:01.000+00:00"}'
K1='"keyIdentifier":{"kmipKeyIdentifier":"1"}'
K2='"keyIdentifier":{"kmipKeyIdentifier":"2"}'
log '{'$T',"id":4615611,"msg":"MongoDB starting","attr":{"pid":'$PID'}}'
log '{'$T',"id":29115,"msg":"read","attr":{'$K1'}}'
log '{'$T',"id":29039,"msg":"keys DB"}'
log '{'$T',"id":29116,"msg":"created","attr":{'$K2'}}'
mkdir "$DB/key.db.rotation" && printf 'keystore under 2' > "$DB/key.db.rotation/keystore.wt"
rm -rf "$DB/key.db.rotated"; mv "$DB/key.db" "$DB/key.db.rotated"; mv "$DB/key.db.rotation" "$DB/key.db"
cp "$ROOT/new-storage.bson" "$DB/storage.bson"
OLD='"oldKeyIdentifier":{"kmipKeyIdentifier":"1"}'
NEW='"newKeyIdentifier":{"kmipKeyIdentifier":"2"}'
log '{'$T',"id":29111,"msg":"Rotated master encryption key","attr":{'$OLD','$NEW'}}'
log '{'$T',"id":23138,"msg":"Shutting down","attr":{"exitCode":0}}'
exit 0
"""
