# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The work of ``mongod_rotate_master_key``: a plan from every check, then its application.

``RotationBackend.plan()`` reads the member (config, dbPath, log, unit) and returns a
``RotationPlan`` - before, after, actions - or raises the typed error of a refusal, changing
nothing. ``apply(plan)`` does exactly the plan's actions; check mode returns the plan alone, so
it shows what a real run would do (community.crypto's module_backends model).

The one-shot rotation is mongod itself, started as the service user with the member's own
config plus ``--kmipRotateMasterKey`` (psmdb-kmip.md section 4), never through the systemd unit.

``security.kmip.keyIdentifier`` of the config decides how the new key is given:

- a new key id is given: ``--kmipKeyIdentifier <new>`` (the command line wins over the file);
- none is given and the config names the CURRENT key: PSMDB refuses to rotate to the key it
  already uses ("...key identifier is equal to that the system is already configured with"),
  so mongod runs with a temporary copy of the config without ``keyIdentifier`` (0600, owned by
  the service user, in a 0700 directory, removed afterwards) and generates a new key;
- none is given and the config names ANOTHER key: that key is the new one (MongoDB's documented
  manual procedure: update keyIdentifier, start with rotateMasterKey);
- none anywhere: mongod generates and registers a new key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import IntBound
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import STORAGE_BSON
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation import state as member_state
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.errors import (
    InterruptedRotationError,
    LeftoverRotationDirError,
    MongodRunningError,
    NotKmipEncryptedError,
    RotationFailedError,
    RotationTimeoutError,
    ServiceUserError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_config import (
    MemberConfig,
    redactor,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import (
    KEY_DB_ROTATED,
    LOCK_FILE,
    MemberFiles,
    read_pid_file,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.mongod_log import (
    KEY_ROTATED,
    MongodRun,
    key_entry,
    runs_from_entries,
    scan_log,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.process import (
    MongodRunner,
    RunAs,
    RunResult,
    exit_meaning,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.service import (
    EnvironmentFile,
    UnitState,
    read_environment_file,
    refuse_running_unit,
    same_file,
    unit_state,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.file_access import (
    READ,
    SEARCH,
    WRITE,
    ServiceUser,
    allows,
    check_readable_by,
)

ROTATE_ARGSPEC: dict[str, dict[str, Any]] = {
    "config": {"type": "path", "default": "/etc/mongod.conf"},
    "binary": {"type": "path", "default": "/usr/bin/mongod"},
    "service_user": {"type": "str", "default": "mongod"},
    "service_name": {"type": "str"},
    "environment_file": {"type": "path"},
    "new_key_identifier": {"type": "str", "no_log": False},
    "current_key_identifier": {"type": "str", "no_log": False},
    "remove_leftover_rotation_dir": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 600},
}
#: the deadline of the one-shot mongod run: at most one day
ROTATE_BOUNDS: dict[str, IntBound] = {"timeout": IntBound(1, 86400, "seconds, at most one day")}

#: how much of mongod's log is read backwards to recognise an interrupted rotation
LOG_SCAN_BYTES = 16 * 1024 * 1024
GENERATED = "generated"
TEMP_CONFIG_PLACEHOLDER = "<temporary copy of {config} without security.kmip.keyIdentifier>"

# the actions of a plan, in the order they run
REMOVE_LEFTOVER = "remove_leftover_rotation_dir"
WRITE_TEMP_CONFIG = "write_temporary_config"
RUN_MONGOD = "run_mongod_rotation"
REMOVE_TEMP_CONFIG = "remove_temporary_config"


@dataclasses.dataclass
class Action:
    action: str
    description: str
    path: str | None = None
    argv: list[str] | None = None
    user: str | None = None

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {"action": self.action, "description": self.description}
        for key in ("path", "argv", "user"):
            if getattr(self, key) is not None:
                result[key] = getattr(self, key)
        return result


@dataclasses.dataclass
class RotationPlan:
    db_path: str
    old_key: str
    #: the key to rotate to; None when mongod generates it
    new_key: str | None
    new_key_source: str
    temporary_config: bool
    argv: list[str]
    before: dict[str, Any]
    after: dict[str, Any]
    actions: list[Action] = dataclasses.field(default_factory=list)
    nothing_to_do: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    follow_up: list[str] = dataclasses.field(default_factory=list)
    service: dict[str, Any] | None = None
    environment_file: dict[str, Any] | None = None

    @property
    def changes(self) -> bool:
        return bool(self.actions)

    def as_result(self) -> dict[str, Any]:
        return {
            "db_path": self.db_path,
            "old_key_identifier": self.old_key,
            "new_key_identifier": self.new_key,
            "new_key_source": self.new_key_source,
            "temporary_config": self.temporary_config,
            "command": list(self.argv),
            "nothing_to_do": self.nothing_to_do,
            "notes": list(self.notes),
            "follow_up": list(self.follow_up),
            "member_state": member_state.Assessment(member_state.OK).as_result(),
            "service": self.service,
            "environment_file": self.environment_file,
            "plan": {
                "before": self.before,
                "after": self.after,
                "actions": [action.as_result() for action in self.actions],
            },
        }

    def diff(self) -> dict[str, str]:
        return {
            "before": _render(self.before),
            "after": _render(self.after),
            "before_header": f"{self.db_path} (master key)",
            "after_header": f"{self.db_path} (master key)",
        }


def _render(facts: dict[str, Any]) -> str:
    return "".join(f"{key}: {value}\n" for key, value in facts.items())


@dataclasses.dataclass
class RotationOutcome:
    run: RunResult
    mongod_run: MongodRun | None
    new_key: str
    removed_leftover: bool

    def as_result(self) -> dict[str, Any]:
        return {
            "new_key_identifier": self.new_key,
            "command": list(self.run.argv),
            "run": self.run.as_result(),
            "log": [key_entry(e) for e in (self.mongod_run.entries if self.mongod_run else [])],
            "removed_leftover_rotation_dir": self.removed_leftover,
            "member_state": member_state.Assessment(member_state.OK, "rotated").as_result(),
        }


class RotationBackend:
    """Plans and applies one rotation. ``params`` are the module's; ``systemctl`` finds systemctl."""

    def __init__(self, params: dict[str, Any], systemctl: Callable[[], str], warn: Callable[[str], None]) -> None:
        self.params = params
        self._systemctl = systemctl
        self.warn = warn
        self.config: MemberConfig | None = None
        self.run_as: RunAs | None = None
        self.env_file: EnvironmentFile | None = None
        self.files: MemberFiles | None = None
        self.secrets: list[str] = []

    # -- planning -----------------------------------------------------------------------------

    def plan(self) -> RotationPlan:
        params = self.params
        timeout = params["timeout"]
        if timeout is None or timeout <= 0:
            raise InvalidOptionError("timeout", f"must be a positive number of seconds, got {timeout}")
        new_key = self._key_option("new_key_identifier")
        current_key = self._key_option("current_key_identifier")
        config = self.config = MemberConfig.read(params["config"])
        self.secrets = list(config.secrets)
        if not config.uses_kmip:
            raise NotKmipEncryptedError(
                f"config: {config.path} does not configure KMIP encryption (security.enableEncryption and "
                "security.kmip.serverName): there is no KMIP master key to rotate",
                option="config",
            )
        if config.log_destination == "syslog":
            raise InvalidOptionError(
                "config",
                f"{config.path} sends mongod's log to syslog: the module judges a rotation by mongod's log line "
                "29111 and reads it from systemLog.path. Use systemLog.destination: file",
            )
        run_as = self.run_as = RunAs.service_user(params["service_user"])
        if params["environment_file"]:
            self.env_file = read_environment_file(params["environment_file"])
            named = self.env_file.options_config
            if named is not None and not same_file(named, config.path):
                raise InvalidOptionError(
                    "environment_file",
                    f"OPTIONS in {self.env_file.path} starts mongod with {named}, not {config.path}: "
                    f"give config={named}",
                )
            self.secrets += [v for k, v in self.env_file.variables.items() if _secret_name(k) and v]
        binary = params["binary"]
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            raise InvalidOptionError("binary", f"{binary} is not an executable file")
        unit = self._unit()
        files = self.files = MemberFiles.inspect(config.db_path)
        self._refuse_running(files, config)
        scan = scan_log(config.log_path, LOG_SCAN_BYTES) if config.log_path else None
        assessment = member_state.assess(files, scan)
        if assessment.state in (member_state.NO_DATA, member_state.NOT_KMIP):
            raise NotKmipEncryptedError(
                f"{config.db_path}: {assessment.message}; a master key rotation needs data encrypted with a KMIP key",
                db_path=config.db_path,
                member_state=assessment.as_result(),
            )
        if assessment.state in member_state.INTERRUPTED:
            raise InterruptedRotationError(
                assessment.message + ". Nothing was done; follow member_state.recovery",
                db_path=config.db_path,
                member_state=assessment.as_result(),
            )
        stored = files.key_id
        if stored is None:  # assess() said NOT_KMIP already; kept explicit for the reader
            raise NotKmipEncryptedError(f"{config.db_path}: storage.bson names no KMIP key", db_path=config.db_path)
        if not files.key_db.present:
            raise NotKmipEncryptedError(
                f"{config.db_path}: storage.bson names the KMIP key {stored} but there is no key.db keystore; "
                "PSMDB refuses to rotate ('Master key rotation is in effect but there is no existing encryption key "
                "database.'). Check storage.dbPath",
                db_path=config.db_path,
            )
        leftover = assessment.state == member_state.LEFTOVER_ROTATION_DIR
        if leftover and not params["remove_leftover_rotation_dir"]:
            raise LeftoverRotationDirError(
                assessment.message + ". Nothing was done",
                db_path=config.db_path,
                member_state=assessment.as_result(),
            )

        before = {
            "key_identifier": stored,
            "key.db": f"keystore under {stored}",
            KEY_DB_ROTATED: "present (keystore under an older key)" if files.key_db_rotated.present else "absent",
            "key.db.rotation": "present (leftover)" if leftover else "absent",
        }
        base = RotationPlan(
            db_path=config.db_path,
            old_key=stored,
            new_key=None,
            new_key_source=GENERATED,
            temporary_config=False,
            argv=[],
            before=before,
            after=dict(before),
            service=unit.as_result() if unit else None,
            environment_file=self.env_file.as_result() if self.env_file else None,
        )
        if unit is not None and unit.restart not in (None, "no"):
            base.notes.append(
                f"the unit {unit.name} has Restart={unit.restart}: that is why the rotation runs outside the unit "
                "(a restart after its clean exit would run it again); start the unit normally afterwards"
            )
        if current_key is not None and current_key != stored:
            base.nothing_to_do = (
                f"the data is encrypted with {stored}, not with current_key_identifier {current_key}: "
                "nothing to rotate (already rotated?)"
            )
            return base
        if new_key is not None and new_key == stored:
            base.nothing_to_do = f"the data is already encrypted with new_key_identifier {new_key}"
            return base

        configured = config.key_identifier
        temporary = new_key is None and configured == stored
        if new_key is None and configured is not None and configured != stored:
            new_key, source = configured, "config"
        else:
            source = GENERATED if new_key is None else "given"
        config_arg = TEMP_CONFIG_PLACEHOLDER.format(config=config.path) if temporary else config.path
        argv = [self.params["binary"], "--config", config_arg, "--kmipRotateMasterKey"]
        if new_key is not None and source == "given":
            argv += ["--kmipKeyIdentifier", new_key]
        self._check_service_user_access(files, config, run_as, temporary)

        plan = dataclasses.replace(
            base, new_key=new_key, new_key_source=source, temporary_config=temporary, argv=argv, actions=[]
        )
        new_text = new_key or "a new key mongod generates and registers (id known after the run)"
        plan.after = {
            "key_identifier": new_key or "(generated by mongod)",
            "key.db": f"keystore under {new_text}",
            KEY_DB_ROTATED: f"keystore under {stored}",
            "key.db.rotation": "absent",
        }
        if leftover:
            plan.actions.append(
                Action(
                    REMOVE_LEFTOVER,
                    "remove the key.db.rotation left by an interrupted rotation (holding mongod.lock meanwhile)",
                    path=files.key_db_rotation.path,
                )
            )
        if temporary:
            plan.actions.append(
                Action(
                    WRITE_TEMP_CONFIG,
                    f"write a copy of {config.path} without security.kmip.keyIdentifier (which names the current key "
                    f"{stored}: PSMDB refuses to rotate to it), mode 0600, owned by {run_as.name}",
                    path=config_arg,
                )
            )
        plan.actions.append(
            Action(
                RUN_MONGOD,
                f"run mongod once as {run_as.name} to rotate the master key from {stored} to {new_text}; it exits "
                f"when done (deadline {timeout} s)",
                argv=argv,
                user=run_as.name,
            )
        )
        if temporary:
            plan.actions.append(Action(REMOVE_TEMP_CONFIG, "remove the temporary copy", path=config_arg))
        plan.follow_up = follow_up(config, plan, unit)
        if source == "given" and configured not in (None, stored, new_key):
            plan.notes.append(
                f"security.kmip.keyIdentifier in {config.path} names {configured}; new_key_identifier {new_key} "
                "given on the command line wins"
            )
        return plan

    def _key_option(self, name: str) -> str | None:
        value = self.params.get(name)
        if value is None:
            return None
        if not value.strip() or value != value.strip():
            raise InvalidOptionError(name, "must be a KMIP unique identifier without surrounding spaces")
        return str(value)

    def _unit(self) -> UnitState | None:
        name = self.params.get("service_name")
        if not name:
            return None
        state = unit_state(self._systemctl(), name)
        refuse_running_unit(state)
        return state

    def _refuse_running(self, files: MemberFiles, config: MemberConfig) -> None:
        lock = files.lock
        if lock.held:
            holder = f"pid {lock.pid} ({lock.command})" if lock.pid_alive else "another process"
            raise MongodRunningError(
                f"{files.db_path}/{LOCK_FILE} is locked by {holder}: a mongod runs on this dbPath. Stop it first and "
                "wait until it has exited (its shutdown quiesces for up to 15 s)",
                db_path=files.db_path,
                lock=lock.as_result(),
            )
        if lock.held is None:
            raise MongodRunningError(
                f"cannot tell whether a mongod runs on {files.db_path}: {lock.error}", db_path=files.db_path
            )
        if config.pid_file:
            pid_file = read_pid_file(config.pid_file)
            if pid_file.names_running_mongod:
                raise MongodRunningError(
                    f"processManagement.pidFilePath {config.pid_file} names the running mongod pid {pid_file.pid}; "
                    "stop it first",
                    pid_file=pid_file.as_result(),
                )

    def _check_service_user_access(
        self, files: MemberFiles, config: MemberConfig, run_as: RunAs, temporary: bool
    ) -> None:
        """Refuse, before anything runs, what mongod could not use as the service user."""
        if run_as.uid == 0:
            self.warn("service_user is root: files mongod creates in the dbPath will belong to root")
            return
        user = ServiceUser(name=run_as.name, uid=run_as.uid, gids=frozenset(run_as.groups))
        if not temporary:
            try:
                check_readable_by("config", config.path, user)
            except InvalidOptionError as error:
                raise ServiceUserError(str(error), option="config") from None
        problems: list[str] = []
        db = files.db_path
        wanted = [(db, READ | WRITE | SEARCH)]
        for name in (STORAGE_BSON, LOCK_FILE):
            path = os.path.join(db, name)
            if os.path.lexists(path):
                wanted.append((path, READ | WRITE))
        for top in (files.key_db.path, files.key_db_rotated.path):
            for path in _tree(top):
                wanted.append((path, READ | WRITE | SEARCH if os.path.isdir(path) else READ | WRITE))
        if config.log_path:
            target = config.log_path if os.path.exists(config.log_path) else os.path.dirname(config.log_path)
            wanted.append((target, WRITE if target == config.log_path else WRITE | SEARCH))
        for path, want in wanted:
            if not allows(path, user, want):
                problems.append(path)
            if len(problems) >= 10:
                break
        if problems:
            raise ServiceUserError(
                f"the service user {run_as.name} cannot read and write {', '.join(problems)}: mongod runs as "
                f"{run_as.name} and would fail. Give these files back to it (chown {run_as.name})",
                paths=problems,
            )

    # -- applying -----------------------------------------------------------------------------

    def _planned(self) -> tuple[MemberConfig, RunAs, MemberFiles]:
        if self.config is None or self.run_as is None or self.files is None:
            raise RuntimeError("RotationBackend.apply() needs the plan() of the same backend first")
        return self.config, self.run_as, self.files

    def apply(self, plan: RotationPlan) -> RotationOutcome:
        config, run_as, files = self._planned()
        removed = False
        if any(action.action == REMOVE_LEFTOVER for action in plan.actions):
            remove_leftover_rotation_dir(files)
            removed = True
        workdir = tempfile.mkdtemp(prefix="kmipops-rotation-")
        try:
            if run_as.drop:
                os.chown(workdir, run_as.uid, run_as.gid)
            os.chmod(workdir, 0o700)
            argv = list(plan.argv)
            if plan.temporary_config:
                argv[2] = self._write_temporary_config(workdir, config, run_as)
            env = run_as.environment(self.env_file.variables if self.env_file else {})
            before = MemberFiles.inspect(config.db_path)
            runner = MongodRunner(
                argv,
                run_as,
                env,
                workdir,
                config.log_path if config.log_destination == "file" else None,
                float(self.params["timeout"]),
                redactor(self.secrets),
            )
            result = runner.run()
            if plan.temporary_config:
                result.argv[2] = TEMP_CONFIG_PLACEHOLDER.format(config=config.path)
            return self._judge(plan, before, result, removed)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _write_temporary_config(self, workdir: str, config: MemberConfig, run_as: RunAs) -> str:
        path = os.path.join(workdir, "mongod.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(config.without_key_identifier())
            if run_as.drop:
                os.fchown(handle.fileno(), run_as.uid, run_as.gid)
        return path

    def _judge(self, plan: RotationPlan, before: MemberFiles, result: RunResult, removed: bool) -> RotationOutcome:
        runs = runs_from_entries(result.entries)
        run = runs[-1] if runs else None
        after = MemberFiles.inspect(plan.db_path)
        facts: dict[str, Any] = {
            "db_path": plan.db_path,
            "old_key_identifier": plan.old_key,
            "command": result.argv,
            "run": result.as_result(),
            "log": [key_entry(e) for e in (run.entries if run else [])],
            "removed_leftover_rotation_dir": removed,
        }
        if result.timed_out:
            raise RotationTimeoutError(
                f"mongod (pid {result.mongod_pid}) did not exit within {self.params['timeout']} s. It was left "
                "running: stopping it mid-rotation could leave the keystore between two states. Wait until it exits, "
                "then read the member with kmipops.psmdb.mongod_encryption_info",
                **facts,
            )
        rotated = run is not None and run.rotated_to is not None
        proven = (
            result.exit_code == 0
            and rotated
            and run is not None
            and run.rotated_from == plan.old_key
            and after.key_id == run.rotated_to
            and (plan.new_key is None or run.rotated_to == plan.new_key)
        )
        if proven and run is not None and run.rotated_to is not None:
            return RotationOutcome(result, run, run.rotated_to, removed)
        assessment = member_state.after_own_run(before, after, run)
        facts["member_state"] = assessment.as_result()
        facts["mongod_error"] = run.encryption_error if run else None
        facts["fatal_error"] = run.fatal_error if run else None
        if run is not None and run.key_ids_created:
            facts["registered_key_identifier"] = run.key_ids_created[-1]
        raise RotationFailedError(self._failure_message(plan, result, run, after, assessment), **facts)

    def _failure_message(
        self,
        plan: RotationPlan,
        result: RunResult,
        run: MongodRun | None,
        after: MemberFiles,
        assessment: member_state.Assessment,
    ) -> str:
        code = result.exit_code
        text = f"mongod did not rotate the master key (exit {code}: {exit_meaning(code)})"
        if result.stopped_listening:
            text += "; it started serving instead of rotating and was stopped"
        if run is not None and run.encryption_error is not None:
            text += f": {run.encryption_error['message']}"
        elif run is not None and run.fatal_error:
            text += f": {run.fatal_error}"
        elif run is not None and run.rotated_to is not None:
            text += (
                f": it logged {KEY_ROTATED} ({run.rotated_from} -> {run.rotated_to}) but storage.bson names "
                f"{after.key_id}, so the rotation is not proven"
            )
        elif result.stderr.strip():
            text += f": {result.stderr.strip().splitlines()[-1]}"
        if assessment.state == member_state.OK:
            text += f". The member is unchanged and starts on its key {plan.old_key}"
        else:
            text += f". {assessment.message}. See member_state.recovery"
        return text


def follow_up(config: MemberConfig, plan: RotationPlan, unit: UnitState | None) -> list[str]:
    """What must happen before the member starts again."""
    steps: list[str] = []
    configured = config.key_identifier
    target = plan.new_key or "<new_key_identifier of the result>"
    if configured is not None and configured != plan.new_key:
        steps.append(
            f"security.kmip.keyIdentifier in {config.path} names {configured}: remove it or set it to {target} "
            "(kmipops.psmdb.mongod_kmip_config) before mongod starts, or mongod refuses to start ('The provided "
            "... KMIP keyIdentifier is not equal to that the system is already configured with')"
        )
    if config.rotate_master_key:
        steps.append(
            f"remove security.kmip.rotateMasterKey from {config.path} (kmipops.psmdb.mongod_kmip_config removes "
            "it): with it mongod rotates again at every start"
        )
    steps.append(f"start mongod normally{f' (systemctl start {unit.name})' if unit else ''}")
    steps.append(
        f"keep the old key {plan.old_key} on the KMS: key.db.rotated and every backup taken before the rotation need it"
    )
    return steps


def remove_leftover_rotation_dir(files: MemberFiles) -> None:
    """Remove ``key.db.rotation`` while holding mongod.lock, so no mongod can start meanwhile."""
    lock_path = os.path.join(files.db_path, LOCK_FILE)
    fd: int | None = None
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise MongodRunningError(
                        f"{lock_path} became locked: a mongod started on {files.db_path}; nothing was removed",
                        db_path=files.db_path,
                    ) from None
                raise
        shutil.rmtree(files.key_db_rotation.path)
    finally:
        if fd is not None:
            os.close(fd)


def _tree(top: str) -> list[str]:
    if not os.path.lexists(top):
        return []
    paths = [top]
    if os.path.isdir(top) and not os.path.islink(top):
        for root, dirs, names in os.walk(top):
            paths.extend(os.path.join(root, name) for name in dirs + names)
    return paths


def _secret_name(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in ("PASS", "SECRET", "TOKEN", "KEY"))
