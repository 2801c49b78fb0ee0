# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.rotate: the plan from every check, and its application with a scripted mongod.

The member's files belong to ``nobody`` when the tests run as root, so the backend drops
privileges as it does on a real host.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation import errors
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.rotate import (
    ROTATE_ARGSPEC,
    RotationBackend,
    RotationPlan,
)
from unit.utils.rotation_member import ROTATE_OK, FakeMember, make_member, rotation, storage_bson_bytes


@pytest.fixture(autouse=True)
def private_tempdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Give each test its own temporary directory root.

    Other suites (and other tests) rotate at the same time on this host; a shared /tmp would make
    "no temporary copy is left behind" see their directories too.
    """
    root = tempfile.mkdtemp(prefix="kmipops-unit-tmp-")
    os.chmod(root, 0o755)  # the service user must reach the temporary config inside it
    monkeypatch.setattr(tempfile, "tempdir", root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def member() -> Iterator[FakeMember]:
    created = make_member("1")
    (created.root / "new-storage.bson").write_bytes(storage_bson_bytes("2"))
    created.script(ROTATE_OK)
    yield created
    shutil.rmtree(created.root, ignore_errors=True)


def backend(member: FakeMember, warnings: list[str] | None = None, systemctl: str = "/bin/false", **params: Any):
    values = {name: spec.get("default") for name, spec in ROTATE_ARGSPEC.items()}
    values.update(config=str(member.config), binary=str(member.mongod), service_user=member.user, timeout=60)
    values.update(params)
    return RotationBackend(values, systemctl=lambda: systemctl, warn=(warnings if warnings is not None else []).append)


def plan(member: FakeMember, **params: Any) -> RotationPlan:
    return backend(member, **params).plan()


def temp_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "kmipops-rotation-*")))


# -- plans ---------------------------------------------------------------------------------------


def test_a_generated_key(member: FakeMember) -> None:
    result = plan(member)
    assert (result.old_key, result.new_key, result.new_key_source) == ("1", None, "generated")
    assert result.argv == [str(member.mongod), "--config", str(member.config), "--kmipRotateMasterKey"]
    assert [a.action for a in result.actions] == ["run_mongod_rotation"]
    assert result.actions[0].user == member.user
    assert result.before["key_identifier"] == "1" and result.after["key.db.rotated"] == "keystore under 1"
    assert result.follow_up[-1].startswith("keep the old key 1")
    assert "--- " not in result.diff()["before"] and "key_identifier: 1" in result.diff()["before"]


def test_a_config_naming_the_current_key_gets_a_temporary_copy(member: FakeMember) -> None:
    member.write_config(key_identifier="1")
    result = plan(member)
    assert result.temporary_config is True and result.new_key_source == "generated"
    assert result.argv[2].startswith("<temporary copy of") and "--kmipKeyIdentifier" not in result.argv
    assert [a.action for a in result.actions] == [
        "write_temporary_config",
        "run_mongod_rotation",
        "remove_temporary_config",
    ]
    assert any("keyIdentifier" in step and "names 1" in step for step in result.follow_up)


def test_a_config_naming_another_key_rotates_to_it(member: FakeMember) -> None:
    member.write_config(key_identifier="5")
    result = plan(member)
    assert (result.new_key, result.new_key_source, result.temporary_config) == ("5", "config", False)
    assert "--kmipKeyIdentifier" not in result.argv, "the config already says it"


def test_a_given_key_wins_over_the_config(member: FakeMember) -> None:
    member.write_config(key_identifier="5")
    result = plan(member, new_key_identifier="7")
    assert (result.new_key, result.new_key_source) == ("7", "given")
    assert result.argv[-2:] == ["--kmipKeyIdentifier", "7"]
    assert any("names 5" in note for note in result.notes)
    assert any("names 5" in step for step in result.follow_up)


def test_nothing_to_do(member: FakeMember) -> None:
    assert "already encrypted with new_key_identifier 1" in (plan(member, new_key_identifier="1").nothing_to_do or "")
    other = plan(member, current_key_identifier="0")
    assert other.actions == [] and "not with current_key_identifier 0" in (other.nothing_to_do or "")
    assert plan(member, current_key_identifier="1").actions, "the expected key: rotate"


def test_rotate_master_key_left_in_the_config_is_a_follow_up(member: FakeMember) -> None:
    member.write_config(extra="    rotateMasterKey: true\n")
    assert any("rotateMasterKey" in step for step in plan(member).follow_up)


# -- refusals -----------------------------------------------------------------------------------


def test_a_held_lock_is_refused(member: FakeMember) -> None:
    with open(member.db / "mongod.lock", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(errors.MongodRunningError) as caught:
            plan(member)
    assert "is locked" in str(caught.value) and caught.value.details()["lock"]["held"] is True


def test_a_pid_file_naming_a_running_mongod_is_refused(member: FakeMember) -> None:
    member.write_config(fork=True)
    fake = member.root / "bin" / "mongod-sleeping"
    shutil.copy("/bin/sleep", fake)
    process = subprocess.Popen([str(fake), "60"])
    try:
        (member.root / "run" / "mongod.pid").write_text(f"{process.pid}\n")
        with pytest.raises(errors.MongodRunningError, match="pidFilePath"):
            for _attempt in range(200):  # until the child has exec'd the "mongod" binary
                plan(member)
    finally:
        process.kill()
        process.wait()


def test_an_active_unit_is_refused(member: FakeMember, tmp_path: Path) -> None:
    systemctl = tmp_path / "systemctl"
    systemctl.write_text("#!/bin/sh\nprintf 'LoadState=loaded\\nActiveState=activating\\nSubState=start\\n'\n")
    systemctl.chmod(0o755)
    with pytest.raises(errors.MongodRunningError, match="activating"):
        backend(member, systemctl=str(systemctl), service_name="mongod").plan()


def test_a_leftover_rotation_dir_is_refused_unless_asked(member: FakeMember) -> None:
    (member.db / "key.db.rotation").mkdir()
    with pytest.raises(errors.LeftoverRotationDirError) as caught:
        plan(member)
    assert caught.value.details()["member_state"]["state"] == "leftover_rotation_dir"
    result = plan(member, remove_leftover_rotation_dir=True)
    assert [a.action for a in result.actions] == ["remove_leftover_rotation_dir", "run_mongod_rotation"]


def test_interrupted_rotations_are_refused_even_with_the_removal(member: FakeMember) -> None:
    os.rename(member.db / "key.db", member.db / "key.db.rotated")
    (member.db / "key.db.rotation").mkdir()
    with pytest.raises(errors.InterruptedRotationError) as caught:
        plan(member, remove_leftover_rotation_dir=True)
    assert caught.value.details()["member_state"]["state"] == "swap_interrupted"


def test_a_swap_recognised_from_the_log_is_refused(member: FakeMember) -> None:
    (member.db / "key.db.rotated").mkdir()
    member.write_log(rotation(77, "1", "9", complete=False))
    with pytest.raises(errors.InterruptedRotationError) as caught:
        plan(member)
    assert caught.value.details()["member_state"]["state"] == "metadata_not_written"


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        (lambda m: m.config.write_text(f"storage:\n  dbPath: {m.db}\n"), errors.NotKmipEncryptedError, "KMIP"),
        (lambda m: m.write_config(log="syslog"), InvalidOptionError, "syslog"),
        (lambda m: shutil.rmtree(m.db / "key.db"), errors.NotKmipEncryptedError, "no key.db"),
        (lambda m: (m.db / "storage.bson").write_bytes(storage_bson_bytes(None)), errors.NotKmipEncryptedError, "KMIP"),
        (lambda m: m.mongod.chmod(0o644), InvalidOptionError, "not an executable"),
    ],
    ids=["no-kmip-config", "syslog", "no-key-db", "no-kmip-data", "binary"],
)
def test_members_that_cannot_rotate(member: FakeMember, change: Any, error: type, text: str) -> None:
    change(member)
    with pytest.raises(error, match=text):
        plan(member)


@pytest.mark.parametrize(
    ("params", "option"),
    [({"timeout": 0}, "timeout"), ({"new_key_identifier": " 7"}, "new_key_identifier")],
)
def test_bad_options(member: FakeMember, params: dict[str, Any], option: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        plan(member, **params)
    assert caught.value.option == option


def test_an_environment_file_naming_another_config(member: FakeMember, tmp_path: Path) -> None:
    env = tmp_path / "mongod"
    env.write_text('OPTIONS="-f /etc/other.conf"\n')
    with pytest.raises(InvalidOptionError, match=r"other\.conf"):
        plan(member, environment_file=str(env))
    env.write_text(f'OPTIONS="--config {member.config}"\nAPI_TOKEN=Dummy-Env-7\n')
    planned = backend(member, environment_file=str(env))
    planned.plan()
    assert "Dummy-Env-7" in planned.secrets, "a secret-looking variable is masked in the output"


@pytest.mark.skipif(os.geteuid() != 0, reason="files of another owner need root")
def test_files_the_service_user_cannot_use_are_refused(member: FakeMember) -> None:
    os.chown(member.db / "key.db" / "keystore.wt", 0, 0)
    os.chmod(member.db / "key.db" / "keystore.wt", 0o600)
    with pytest.raises(errors.ServiceUserError) as caught:
        plan(member)
    assert str(member.db / "key.db" / "keystore.wt") in caught.value.details()["paths"]


# -- applying ------------------------------------------------------------------------------------


def apply(member: FakeMember, **params: Any):
    rotation_backend = backend(member, **params)
    return rotation_backend, rotation_backend.apply(rotation_backend.plan())


def test_a_rotation_is_proven_by_exit_log_and_storage_bson(member: FakeMember) -> None:
    before_temp = temp_dirs()
    _backend, outcome = apply(member)
    assert outcome.new_key == "2" and outcome.run.returncode == 0
    assert outcome.mongod_run is not None and outcome.mongod_run.rotated_from == "1"
    assert (member.db / "key.db.rotated").is_dir()
    assert temp_dirs() == before_temp
    result = outcome.as_result()
    assert result["member_state"]["state"] == "ok" and 29111 in [e["id"] for e in result["log"]]


def test_the_temporary_config_is_private_to_the_service_user_and_removed(member: FakeMember) -> None:
    member.write_config(key_identifier="1")
    record = member.root / "out" / "config"
    member.script(f'stat -c "%a %U" "$CONFIG" > {record}\ngrep -c keyIdentifier "$CONFIG" >> {record}\n' + ROTATE_OK)
    before_temp = temp_dirs()
    _backend, outcome = apply(member)
    mode_owner, count = record.read_text().splitlines()
    assert mode_owner == f"600 {member.user}" and count == "0"
    assert outcome.run.argv[2].startswith("<temporary copy of")
    assert temp_dirs() == before_temp


def test_psmdb_s_error_is_returned_and_the_member_is_unchanged(member: FakeMember) -> None:
    error = (
        '{"id":29120,"msg":"Data-at-Rest Encryption Error","attr":{"error":{"what":"Can\'t rotate master encryption '
        'key","reason":{"what":"key saving failed","reason":"saving the master key to the KMIP server failed: '
        'KMIP sessions failed for all the server hosts."}}}}'
    )
    member.script(
        'log \'{"id":4615611,"attr":{"pid":\'$$\'}}\'\n'
        f'cat >> "$LOG" <<"EOF"\n{error}\nEOF\n'
        'log \'{"id":23138,"attr":{"exitCode":1001}}\'\nexit 233\n'
    )
    with pytest.raises(errors.RotationFailedError) as caught:
        apply(member)
    details = caught.value.details()
    assert details["mongod_error"]["what"] == "Can't rotate master encryption key"
    assert details["member_state"]["state"] == "ok" and details["run"]["rc"] == 233
    message = str(caught.value)
    assert "exit 233" in message and "key saving failed" in message and "starts on its key 1" in message


def test_exit_0_without_29111_is_not_a_rotation(member: FakeMember) -> None:
    member.script('log \'{"id":4615611,"attr":{"pid":\'$$\'}}\'\nexit 0\n')
    with pytest.raises(errors.RotationFailedError, match="did not rotate"):
        apply(member)


def test_29111_without_storage_bson_is_not_proven(member: FakeMember) -> None:
    member.script(ROTATE_OK.replace('cp "$ROOT/new-storage.bson" "$DB/storage.bson"', ""))
    with pytest.raises(errors.RotationFailedError) as caught:
        apply(member)
    assert "not proven" in str(caught.value)
    assert caught.value.details()["member_state"]["state"] == "metadata_not_written"


def test_a_run_killed_after_registering_leaves_a_reported_leftover(member: FakeMember) -> None:
    killed = ROTATE_OK.replace("rm -rf", "kill -9 $$\nrm -rf")
    member.script(killed)
    with pytest.raises(errors.RotationFailedError) as caught:
        apply(member)
    details = caught.value.details()
    assert details["member_state"]["state"] == "leftover_rotation_dir"
    assert details["registered_key_identifier"] == "2" and details["run"]["rc"] == -9


def test_a_timeout_leaves_mongod_running(member: FakeMember) -> None:
    member.script("exec sleep 60\n")
    with pytest.raises(errors.RotationTimeoutError) as caught:
        apply(member, timeout=1)
    pid = caught.value.details()["run"]["pid"]
    try:
        assert os.path.exists(f"/proc/{pid}") and "left running" in str(caught.value)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_the_leftover_is_removed_under_the_lock_then_rotated(member: FakeMember) -> None:
    (member.db / "key.db.rotation").mkdir()
    (member.db / "key.db.rotation" / "keystore.wt").write_bytes(b"half")
    _backend, outcome = apply(member, remove_leftover_rotation_dir=True)
    assert outcome.removed_leftover is True and outcome.new_key == "2"


def test_a_mongod_that_starts_between_plan_and_removal_keeps_its_leftover(member: FakeMember) -> None:
    (member.db / "key.db.rotation").mkdir()
    rotation_backend = backend(member, remove_leftover_rotation_dir=True)
    planned = rotation_backend.plan()
    with open(member.db / "mongod.lock", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(errors.MongodRunningError, match="nothing was removed"):
            rotation_backend.apply(planned)
    assert (member.db / "key.db.rotation").is_dir()


def test_fork_true(member: FakeMember) -> None:
    member.write_config(fork=True)
    child = member.root / "bin" / "child"
    child.write_text(member.mongod.read_text())
    child.chmod(0o755)
    # the parent waits for the child and exits with its status, as mongod's
    member.script(f'"{child}" "$@" &\necho "forked process: $!"\nwait $!\nexit $?\n')
    _backend, outcome = apply(member)
    assert outcome.run.forked_pid is not None and outcome.run.forked_pid != outcome.run.pid
    assert outcome.mongod_run is not None and outcome.mongod_run.pid == outcome.run.forked_pid
    assert outcome.new_key == "2"
