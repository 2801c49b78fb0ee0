# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""What mongod's own log says about its master keys (PSMDB log ids, psmdb-kmip.md sections 3-5).

mongod 4.4+ writes one JSON document per line (logv2). A log can be gigabytes, so it is read
backwards from the end in bounded chunks, newest line first, up to a byte budget shared by the
current file and the rotated ones (``mongod.log.<timestamp>`` from mongod's own logRotate, or
``mongod.log.1`` from logrotate; compressed files are skipped and listed). Lines are grouped into
runs, one per mongod start (4615611 "MongoDB starting"), so a key read by a rotation that then
failed is never taken for the key in use.

Log 21951 "Options set by command line" echoes ``security.kmip.clientCertificatePassword`` in
PSMDB: only ``security.kmip.rotateMasterKey`` is taken from it, the rest is never kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

# PSMDB / mongod log ids
STARTING = 4615611
OPTIONS = 21951
KEY_DB_READY = 29039
KEY_READ = 29115
KEY_CREATED = 29116
KEY_ROTATED = 29111
ENCRYPTION_ERROR = 29120
PRE_ACTIVE_KEY = 29124
LISTENING = 23016
SHUTTING_DOWN = 23138
DB_PATH_ERROR = 20557  # "DBException in initAndListen, terminating" (dbPath missing or locked)
STORAGE_FATAL = 28595  # WiredTiger cannot open the data

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z")
CHUNK_BYTES = 64 * 1024


class ReverseLineReader:
    """The complete lines of one file, newest first, reading at most ``max_bytes`` from its end.

    A line cut by the budget (or a last line still being written, without its newline) is not
    returned: a half JSON document is worth nothing.
    """

    def __init__(self, path: str, max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.max_bytes = max(0, max_bytes)
        self.chunk_bytes = chunk_bytes
        self.bytes_read = 0
        #: True when the budget ended before the start of the file
        self.truncated = False

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            limit = max(0, end - self.max_bytes)
            position = end
            pending = b""
            # the last line may still be being written: it is dropped once its start is found
            partial = True
            while position > limit:
                size = min(self.chunk_bytes, position - limit)
                position -= size
                handle.seek(position)
                data = handle.read(size) + pending
                self.bytes_read += size
                lines = data.split(b"\n")
                if partial:
                    if len(lines) == 1:
                        pending = data  # no newline yet: still inside the last line
                        continue
                    lines[-1] = b""  # the text after the file's last newline
                    partial = False
                pending = lines[0]
                for line in reversed(lines[1:]):
                    if line.strip():
                        yield line
            if position == 0 and not partial:
                if pending.strip():
                    yield pending
            elif position > 0:
                self.truncated = True


def log_files(path: str) -> tuple[list[str], list[str]]:
    """``path`` and its rotated copies, newest first; and the compressed copies that are skipped."""
    directory, base = os.path.split(path)
    files: list[tuple[float, str]] = []
    skipped: list[str] = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    for name in names:
        if not name.startswith(base + ".") or name == base:
            continue
        full = os.path.join(directory, name)
        if not os.path.isfile(full):
            continue
        if name.endswith(COMPRESSED_SUFFIXES):
            skipped.append(full)
            continue
        try:
            files.append((os.stat(full).st_mtime, full))
        except OSError:
            continue
    rotated = [full for _mtime, full in sorted(files, key=lambda item: (item[0], item[1]), reverse=True)]
    current = [path] if os.path.isfile(path) else []
    return current + rotated, sorted(skipped)


def parse_line(line: bytes | str) -> dict[str, Any] | None:
    """One logv2 JSON document, or None for anything else (a fork parent's text, a cut line)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
        return None
    return entry


def entry_time(entry: Mapping[str, Any]) -> str | None:
    stamp = entry.get("t")
    if isinstance(stamp, Mapping):
        stamp = stamp.get("$date")
    return str(stamp) if stamp is not None else None


def kmip_key_id(value: Any) -> str | None:
    """``{kmipKeyIdentifier: "<uid>"}`` (logs) or ``{kmip: {keyId}}`` (serverStatus) -> the uid."""
    if isinstance(value, Mapping):
        if value.get("kmipKeyIdentifier") is not None:
            return str(value["kmipKeyIdentifier"])
        kmip = value.get("kmip")
        if isinstance(kmip, Mapping) and kmip.get("keyId") is not None:
            return str(kmip["keyId"])
    return None


def describe_encryption_error(error: Any) -> dict[str, Any]:
    """PSMDB's 29120 ``attr.error`` made readable, whatever its shape.

    The 7.0 line nests documents: ``{what, reason: {what, reason: "<text>", keyIdentifier...},
    encryptionKeyDatabaseDirectory}`` (psmdb-kmip.md section 3); other builds log a flat string.
    ``message`` joins every ``what`` and the innermost reason; the fields met on the way
    (``keyIdentifier``, ``keyState``, ``configured``, ``provided``, directories,
    ``possibleRemediationActions``) are kept; ``document`` is the original.
    """
    result: dict[str, Any] = {
        "message": "",
        "what": None,
        "reason": None,
        "key_identifier": None,
        "key_state": None,
        "fields": {},
        "document": error,
    }
    if error is None:
        return result
    if not isinstance(error, Mapping):
        result["message"] = result["reason"] = str(error)
        return result
    chain: list[str] = []
    fields: dict[str, Any] = {}
    node: Any = error
    while isinstance(node, Mapping):
        if node.get("what") is not None:
            chain.append(str(node["what"]))
            if result["what"] is None:
                result["what"] = str(node["what"])
        for key, value in node.items():
            if key not in ("what", "reason"):
                fields.setdefault(str(key), value)
        reason = node.get("reason")
        if isinstance(reason, Mapping):
            node = reason
            continue
        if reason is not None:
            chain.append(str(reason).strip())
            result["reason"] = str(reason).strip()
        break
    result["message"] = ": ".join(chain)
    result["fields"] = fields
    result["key_identifier"] = kmip_key_id(fields.get("keyIdentifier"))
    if fields.get("keyState") is not None:
        result["key_state"] = str(fields["keyState"])
    return result


@dataclasses.dataclass
class MongodRun:
    """What one mongod process logged about its keys, from its start line on."""

    pid: int | None = None
    started_at: str | None = None
    #: the start line was read (False: the budget ended inside this run)
    complete: bool = False
    #: ``security.kmip.rotateMasterKey`` in its options (None when 21951 was not read)
    rotation: bool | None = None
    key_ids_read: list[str] = dataclasses.field(default_factory=list)
    key_ids_created: list[str] = dataclasses.field(default_factory=list)
    rotated_from: str | None = None
    rotated_to: str | None = None
    rotated_at: str | None = None
    key_db_ready: bool = False
    pre_active_key: bool = False
    listening: bool = False
    encryption_error: dict[str, Any] | None = None
    fatal_error: str | None = None
    exit_code: int | None = None
    last_at: str | None = None
    entries: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, entry: Mapping[str, Any]) -> None:
        """Take one entry, in log order."""
        log_id = entry["id"]
        raw_attr = entry.get("attr")
        attr: Mapping[str, Any] = raw_attr if isinstance(raw_attr, Mapping) else {}
        self.last_at = entry_time(entry) or self.last_at
        if log_id == STARTING:
            self.complete = True
            self.started_at = entry_time(entry)
            pid = attr.get("pid")
            self.pid = int(pid) if isinstance(pid, int) else None
        elif log_id == OPTIONS:
            self.rotation = _rotate_option(attr.get("options"))
            return  # never kept: PSMDB echoes the KMIP password here
        elif log_id == KEY_READ:
            _append_key(self.key_ids_read, attr.get("keyIdentifier"))
        elif log_id == KEY_CREATED:
            _append_key(self.key_ids_created, attr.get("keyIdentifier"))
        elif log_id == KEY_ROTATED:
            self.rotated_from = kmip_key_id(attr.get("oldKeyIdentifier"))
            self.rotated_to = kmip_key_id(attr.get("newKeyIdentifier"))
            self.rotated_at = entry_time(entry)
        elif log_id == KEY_DB_READY:
            self.key_db_ready = True
        elif log_id == PRE_ACTIVE_KEY:
            self.pre_active_key = True
        elif log_id == LISTENING:
            self.listening = True
        elif log_id == ENCRYPTION_ERROR:
            self.encryption_error = describe_encryption_error(attr.get("error"))
        elif log_id in (DB_PATH_ERROR, STORAGE_FATAL):
            self.fatal_error = str(attr.get("error") or attr.get("reason") or entry.get("msg"))
        elif log_id == SHUTTING_DOWN:
            code = attr.get("exitCode")
            self.exit_code = int(code) if isinstance(code, int) else None
        else:
            return
        self.entries.append(key_entry(entry))

    @property
    def ended(self) -> bool:
        return self.exit_code is not None

    @property
    def key_in_use(self) -> str | None:
        """The master key this run encrypted with: the new key of a completed rotation, else the
        key read or created by a start that opened its keystore without an encryption error."""
        if self.rotated_to is not None:
            return self.rotated_to
        if self.rotation or self.encryption_error is not None or not self.key_db_ready:
            return None
        ids = self.key_ids_created or self.key_ids_read
        return ids[-1] if ids else None

    @property
    def new_key_of_rotation(self) -> str | None:
        """For a rotation run: the key it rotated (or was rotating) to, from 29111, 29116 or the
        second 29115 (a provided key is read after the old one)."""
        if not self.rotation:
            return None
        if self.rotated_to is not None:
            return self.rotated_to
        if self.key_ids_created:
            return self.key_ids_created[-1]
        if len(self.key_ids_read) > 1:
            return self.key_ids_read[-1]
        return None

    def outcome(self, running_pid: int | None = None) -> str:
        if self.rotated_to is not None:
            return "rotated"
        if self.encryption_error is not None:
            return "encryption_error"
        if self.fatal_error is not None or (self.exit_code not in (None, 0)):
            return "failed"
        if self.exit_code == 0:
            return "clean_exit"
        if running_pid is not None and self.pid == running_pid:
            return "running"
        return "ended_without_shutdown_line"

    def as_result(self, running_pid: int | None = None) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "started_at": self.started_at,
            "complete": self.complete,
            "rotation": self.rotation,
            "outcome": self.outcome(running_pid),
            "key_ids_read": list(self.key_ids_read),
            "key_ids_created": list(self.key_ids_created),
            "rotated_from": self.rotated_from,
            "rotated_to": self.rotated_to,
            "key_in_use": self.key_in_use,
            "pre_active_key": self.pre_active_key,
            "encryption_error": self.encryption_error,
            "fatal_error": self.fatal_error,
            "exit_code": self.exit_code,
            "last_at": self.last_at,
        }


def key_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A log entry as returned to the operator (id, time, message, attributes) - never 21951."""
    return {"id": entry.get("id"), "t": entry_time(entry), "msg": entry.get("msg"), "attr": entry.get("attr") or {}}


def _append_key(ids: list[str], value: Any) -> None:
    uid = kmip_key_id(value)
    if uid is not None:
        ids.append(uid)


def _rotate_option(options: Any) -> bool:
    security = options.get("security") if isinstance(options, Mapping) else None
    kmip = security.get("kmip") if isinstance(security, Mapping) else None
    return bool(isinstance(kmip, Mapping) and kmip.get("rotateMasterKey"))


def runs_from_entries(entries: list[Mapping[str, Any]]) -> list[MongodRun]:
    """Group entries (in log order) into runs, oldest first; entries before the first start line
    make an incomplete run."""
    runs: list[MongodRun] = []
    current: MongodRun | None = None
    for entry in entries:
        if entry.get("id") == STARTING or current is None:
            current = MongodRun()
            runs.append(current)
        current.add(entry)
    return runs


@dataclasses.dataclass
class LogScan:
    """The newest runs of a member's log (newest first) and what was read to find them."""

    path: str
    files: list[str] = dataclasses.field(default_factory=list)
    skipped_compressed: list[str] = dataclasses.field(default_factory=list)
    bytes_read: int = 0
    truncated: bool = False
    runs: list[MongodRun] = dataclasses.field(default_factory=list)
    error: str | None = None

    @property
    def key_in_use(self) -> str | None:
        """The key of the newest run that says which key it encrypted with."""
        return next((run.key_in_use for run in self.runs if run.key_in_use is not None), None)

    @property
    def last_rotation(self) -> MongodRun | None:
        return next((run for run in self.runs if run.rotated_to is not None), None)

    def as_result(self, running_pid: int | None = None, max_runs: int = 10) -> dict[str, Any]:
        rotation = self.last_rotation
        return {
            "path": self.path,
            "files_read": list(self.files),
            "skipped_compressed": list(self.skipped_compressed),
            "bytes_read": self.bytes_read,
            "truncated": self.truncated,
            "error": self.error,
            "key_identifier": self.key_in_use,
            "last_rotation": None
            if rotation is None
            else {
                "at": rotation.rotated_at,
                "old_key_identifier": rotation.rotated_from,
                "new_key_identifier": rotation.rotated_to,
            },
            "runs": [run.as_result(running_pid) for run in self.runs[:max_runs]],
        }


def scan_log(path: str, max_bytes: int, max_runs: int = 10) -> LogScan:
    """The newest ``max_runs`` complete runs of the log at ``path`` and its rotated copies,
    reading at most ``max_bytes`` in all, newest first."""
    scan = LogScan(path=path)
    files, scan.skipped_compressed = log_files(path)
    budget = max_bytes
    # entries of the run being read, newest first, until its start line is met
    pending: list[dict[str, Any]] = []
    try:
        for file_path in files:
            if budget <= 0 or len(scan.runs) >= max_runs:
                scan.truncated = True
                break
            reader = ReverseLineReader(file_path, budget)
            scan.files.append(file_path)
            for line in reader:
                entry = parse_line(line)
                if entry is None:
                    continue
                pending.append(entry)
                if entry["id"] == STARTING:
                    scan.runs.extend(runs_from_entries(list(reversed(pending))))
                    pending = []
                    if len(scan.runs) >= max_runs:
                        break
            scan.bytes_read += reader.bytes_read
            budget -= reader.bytes_read
            if len(scan.runs) >= max_runs:
                break
    except OSError as exc:
        scan.error = f"cannot read {exc.filename or path}: {exc.strerror}"
    if pending:
        # the budget (or the files) ended inside a run: keep what was seen of it
        scan.runs.extend(runs_from_entries(list(reversed(pending))))
        scan.truncated = True
    return scan


class LogFollower:
    """The lines a file gains from now on (a mongod run's log), also when mongod starts a new
    file (``logAppend: false``: mongod renames the old one, or the file is truncated)."""

    SIGNATURE_BYTES = 4096

    def __init__(self, path: str) -> None:
        self.path = path
        self._inode: int | None = None
        self._offset = 0
        self._signature = b""
        try:
            with open(path, "rb") as handle:
                self._inode = os.fstat(handle.fileno()).st_ino
                self._offset = handle.seek(0, os.SEEK_END)
                self._signature = self._read_signature(handle)
        except OSError:
            pass
        self._partial = b""
        self.entries: list[dict[str, Any]] = []

    def _read_signature(self, handle: Any) -> bytes:
        """The bytes just before the offset: if they change, the file was rewritten in place."""
        start = max(0, self._offset - self.SIGNATURE_BYTES)
        handle.seek(start)
        return bytes(handle.read(self._offset - start))

    def poll(self) -> list[dict[str, Any]]:
        """Read what was appended since the last call; return the new entries."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, on every path
        except OSError:
            return []
        with handle:
            st = os.fstat(handle.fileno())
            # a new file (mongod renamed the old one), or one truncated or rewritten in place
            rewritten = st.st_size < self._offset or (
                st.st_ino == self._inode and self._signature != self._read_signature(handle)
            )
            if st.st_ino != self._inode or rewritten:
                self._inode, self._offset, self._partial = st.st_ino, 0, b""
            handle.seek(self._offset)
            chunk = handle.read()
            self._offset += len(chunk)
            self._signature = self._read_signature(handle)
        if not chunk:
            return []
        new: list[dict[str, Any]] = []
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            entry = parse_line(line)
            if entry is not None:
                new.append(entry)
        self.entries.extend(new)
        return new
