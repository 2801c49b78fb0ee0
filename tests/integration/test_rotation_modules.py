# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_rotate_master_key and mongod_encryption_info against the PSMDB emulator and real PyKMIP.

Every member is an emulated mongod (tests/psmdb_emulator, through emulated_member.py) whose
files belong to the test service user ``kmipops-rot``, created for this module and removed
after it; ansible-playbook runs as root, as ``become`` would, and the module drops to that user.
Members talk to the session PyKMIP server ``kmip_server`` directly, or through a KMS proxy on
``<net>.40``-``.49`` when a test takes the KMS away. After every failure the member is started
again and must read its old key: a failed rotation must leave a member that starts.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulated_member import (
    EmulatedMember,
    EmulatorRuntime,
    Kmip,
    ServiceAccount,
    alive,
    kmip_object_count,
    service_account,
)
from kmip.core import enums

from kmiplab.client import key_state, register_aes_key
from kmiplab.pki import LabPki
from kmiplab.playbook import PlaybookResult
from kmiplab.server import PyKmipServer

MEMBER_OCTETS = range(50, 60)
PROXY_OCTET = 40
TEMP_PREFIX = os.path.join(tempfile.gettempdir(), "kmipops-rotation-")
MASK = "********"


@pytest.fixture(scope="module")
def account() -> Iterator[ServiceAccount]:
    if os.geteuid() != 0:
        pytest.skip("the rotation tests create a service user and drop privileges to it: they need root")
    with service_account() as created:
        yield created


@pytest.fixture(scope="module")
def runtime(account: ServiceAccount) -> Iterator[EmulatorRuntime]:
    built = EmulatorRuntime.build(account)
    yield built
    built.remove()


MemberFactory = Callable[..., EmulatedMember]


@pytest.fixture
def make_member(
    account: ServiceAccount,
    runtime: EmulatorRuntime,
    pki: LabPki,
    kmip_server: PyKmipServer,
    kmiplab_net: str,
    kmip_port: int,
) -> Iterator[MemberFactory]:
    members: list[EmulatedMember] = []

    def make(servers: list[str] | None = None, client: str = "mongod1", password: bool = False, **settings: Any):
        identity = pki.encrypted_client if password else pki.client(client)
        kmip = Kmip(servers or [kmip_server.address], kmip_port, pki.ca.cert, identity.pem, identity.password)
        octet = MEMBER_OCTETS[len(members)]
        member = EmulatedMember(
            runtime.root / f"member-{os.getpid()}-{len(members)}",
            account,
            runtime,
            kmip,
            f"{kmiplab_net}.{octet}",
            **settings,
        ).create()
        members.append(member)
        member.started_key()  # first start: mongod registers its key, as on a new member
        return member

    yield make
    for member in members:
        member.stop_all()
        shutil.rmtree(member.root, ignore_errors=True)


@pytest.fixture
def rotate(account: ServiceAccount, run_playbook: Callable[..., PlaybookResult]):
    def run(member: EmulatedMember, *, check: bool = False, verbosity: int = 0, env=None, **options: Any):
        args = {
            "config": str(member.config),
            "binary": str(member.runtime.mongod),
            "service_user": account.name,
            "environment_file": str(member.environment_file),
            "timeout": 300,
            **options,
        }
        return play(run_playbook, "mongod_rotate_master_key", args, check=check, verbosity=verbosity, env=env)

    return run


@pytest.fixture
def info(run_playbook: Callable[..., PlaybookResult]):
    def run(member: EmulatedMember, *, verbosity: int = 0, **options: Any):
        args = {"config": str(member.config), **options}
        return play(run_playbook, "mongod_encryption_info", args, verbosity=verbosity)

    return run


def play(run_playbook, module: str, args: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], PlaybookResult]:
    text = (
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - name: module\n      kmipops.psmdb.{module}: {json.dumps(args)}\n"
    )
    result = run_playbook(text, diff=True, timeout=900, **kwargs)
    return result.task("module").result, result


def temp_dirs() -> set[str]:
    return set(glob.glob(TEMP_PREFIX + "*"))


def log_ids(result: dict[str, Any]) -> list[int]:
    return [entry["id"] for entry in result.get("log", [])]


# -- rotations that work ------------------------------------------------------------------------


def test_rotation_to_a_generated_key(make_member: MemberFactory, rotate, info, lab_kmip, tmp_path: Path) -> None:
    member = make_member()
    old = member.storage_key_id()
    # a unit that is stopped but restarts on success: the rotation must not go through it
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    systemctl = fake_bin / "systemctl"
    systemctl.write_text(
        "#!/bin/sh\nprintf 'LoadState=loaded\\nActiveState=inactive\\nSubState=dead\\nMainPID=0\\nRestart=always\\n'\n"
    )
    systemctl.chmod(0o755)
    before_temp = temp_dirs()

    result, run = rotate(member, service_name="mongod-test", env={"PATH": f"{fake_bin}:{os.environ['PATH']}"})

    assert run.rc == 0 and result["changed"] is True, run.explain()
    new = result["new_key_identifier"]
    assert result["old_key_identifier"] == old and new not in (None, old)
    assert result["new_key_source"] == "generated" and result["temporary_config"] is False
    assert member.storage_key_id() == new
    assert result["run"]["rc"] == 0 and 29111 in log_ids(result)
    rotated = next(e for e in result["log"] if e["id"] == 29111)["attr"]
    assert rotated == {"oldKeyIdentifier": {"kmipKeyIdentifier": old}, "newKeyIdentifier": {"kmipKeyIdentifier": new}}
    assert result["command"] == [str(member.runtime.mongod), "--config", str(member.config), "--kmipRotateMasterKey"]
    assert result["service"]["restart"] == "always" and any("Restart=always" in n for n in result["notes"])
    assert (member.db_path / "key.db.rotated").is_dir() and not (member.db_path / "key.db.rotation").exists()
    assert member.foreign_files() == [], "mongod ran as the service user: nothing in the dbPath or log is root's"
    assert temp_dirs() == before_temp
    with lab_kmip() as kmip:
        assert key_state(kmip, new) == "ACTIVE"
        assert key_state(kmip, old) == "ACTIVE", "the old key is never touched"
    assert member.started_key() == new, "the member starts on the new key"

    report, _ = info(member, query_kmip=True)
    assert report["key_identifier"] == new
    assert report["key_identifier_sources"]["log"] == new and report["member_state"]["state"] == "ok"
    assert report["log"]["last_rotation"]["old_key_identifier"] == old
    assert report["log"]["last_rotation"]["new_key_identifier"] == new
    assert report["kmip_key"]["state"] == "Active" and report["kmip_key"]["initial_date"]
    assert report["kmip_key"]["activation_date"] is None, "PyKMIP keeps no Activation Date; other servers do"


def test_rotation_to_a_given_key_is_idempotent(make_member: MemberFactory, rotate, lab_kmip) -> None:
    member = make_member()
    old = member.storage_key_id()
    # the operator's normal config: keyIdentifier names the key in use
    member.write_config(key_identifier=old)
    assert member.started_key() == old
    with lab_kmip() as kmip:
        given = register_aes_key(kmip)
        kmip.activate(given)

    result, run = rotate(member, new_key_identifier=given, current_key_identifier=old)

    assert run.rc == 0, run.explain()
    assert (result["new_key_identifier"], result["new_key_source"]) == (given, "given")
    assert result["command"][-2:] == ["--kmipKeyIdentifier", given] and result["temporary_config"] is False
    assert member.storage_key_id() == given
    assert any(f"names {old}" in step for step in result["follow_up"]), result["follow_up"]
    assert member.foreign_files() == []

    again, run = rotate(member, new_key_identifier=given)
    assert run.rc == 0 and again["changed"] is False and "already encrypted" in again["nothing_to_do"]
    from_old, run = rotate(member, current_key_identifier=old)
    assert run.rc == 0 and from_old["changed"] is False and given in from_old["nothing_to_do"]
    assert member.storage_key_id() == given

    # the follow-up is real: with keyIdentifier still naming the old key the member does not start
    code, entries = member.start_fails()
    assert code == 233
    error = next(e for e in entries if e["id"] == 29120)["attr"]["error"]
    assert error["reason"]["configured"] == {"kmipKeyIdentifier": given}
    member.write_config(key_identifier=given)
    assert member.started_key() == given


def test_rotation_with_fork(make_member: MemberFactory, rotate) -> None:
    member = make_member(fork=True)
    old = member.storage_key_id()

    result, run = rotate(member)

    assert run.rc == 0, run.explain()
    assert result["run"]["forked"] is True and result["run"]["rc"] == 0
    assert "child process started successfully, parent exiting" in result["run"]["stdout"]
    assert result["run"]["pid"] != 0 and not alive(result["run"]["pid"]), "the rotating child has exited"
    new = result["new_key_identifier"]
    assert new != old and member.storage_key_id() == new and 29111 in log_ids(result)
    assert member.foreign_files() == []
    assert member.started_key() == new


def test_config_naming_the_current_key_runs_with_a_temporary_copy(make_member: MemberFactory, rotate) -> None:
    member = make_member()
    old = member.storage_key_id()
    member.write_config(key_identifier=old)
    config_before = member.config.read_bytes()
    before_temp = temp_dirs()

    plan, run = rotate(member, check=True)
    assert run.rc == 0 and plan["changed"] is True, run.explain()
    assert [a["action"] for a in plan["plan"]["actions"]] == [
        "write_temporary_config",
        "run_mongod_rotation",
        "remove_temporary_config",
    ]

    result, run = rotate(member)

    assert run.rc == 0, run.explain()
    assert result["temporary_config"] is True and result["new_key_source"] == "generated"
    assert result["command"][2].startswith("<temporary copy of") and "--kmipKeyIdentifier" not in result["command"]
    new = result["new_key_identifier"]
    assert new != old and member.storage_key_id() == new
    assert member.config.read_bytes() == config_before, "the member's own config is not edited"
    assert temp_dirs() == before_temp, "the temporary copy and its directory are removed"
    assert member.foreign_files() == []
    code, _entries = member.start_fails()
    assert code == 233, "keyIdentifier still names the old key, as follow_up says"
    assert any("keyIdentifier" in step and old in step for step in result["follow_up"])
    member.write_config(key_identifier=None)
    assert member.started_key() == new


# -- refusals -----------------------------------------------------------------------------------


def test_refused_while_mongod_runs_or_the_db_path_is_locked(make_member: MemberFactory, rotate, tmp_path: Path) -> None:
    member = make_member()
    config_before = member.config.read_bytes()
    running = member.start()
    files_before = {p: h for p, h in member.fingerprint().items() if "/log/" not in p}
    for check in (True, False):
        result, run = rotate(member, check=check)
        assert run.rc != 0 and result["error_kind"] == "mongod_running", run.explain()
        assert "mongod.lock" in result["msg"] and result["lock"]["held"] is True
    assert {p: h for p, h in member.fingerprint().items() if "/log/" not in p} == files_before
    running.stop()
    member.processes.remove(running)

    # another process holds mongod's lock, as a mongod still quiescing would
    with open(member.db_path / "mongod.lock", "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result, run = rotate(member)
    assert result["error_kind"] == "mongod_running" and "is locked" in result["msg"]

    # a systemd unit that is active
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(
        "#!/bin/sh\nprintf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nMainPID=4242\\nRestart=no\\n'\n"
    )
    (fake_bin / "systemctl").chmod(0o755)
    result, run = rotate(member, service_name="mongod", env={"PATH": f"{fake_bin}:{os.environ['PATH']}"})
    assert result["error_kind"] == "mongod_running" and result["service"]["main_pid"] == 4242
    assert "systemctl stop mongod" in result["msg"]
    assert member.config.read_bytes() == config_before
    assert member.started_key() == member.storage_key_id()


def test_check_mode_touches_nothing(make_member: MemberFactory, rotate) -> None:
    member = make_member()
    old = member.storage_key_id()
    before = member.fingerprint()
    before_temp = temp_dirs()

    result, run = rotate(member, check=True)

    assert run.rc == 0 and result["changed"] is True, run.explain()
    assert result["new_key_identifier"] is None and result["old_key_identifier"] == old
    action = result["plan"]["actions"][0]
    assert action["action"] == "run_mongod_rotation" and action["user"] == "kmipops-rot"
    assert action["argv"] == [str(member.runtime.mongod), "--config", str(member.config), "--kmipRotateMasterKey"]
    assert result["plan"]["before"]["key_identifier"] == old
    assert result["plan"]["after"]["key.db.rotated"] == f"keystore under {old}"
    assert "diff" in result or "--- before" in run.stdout
    assert "run" not in result and "log" not in result
    assert member.fingerprint() == before, "check mode changed a file"
    assert temp_dirs() == before_temp
    assert member.storage_key_id() == old


# -- failures: PSMDB's error, and the member starts again on its old key ------------------------


def test_kms_unreachable_returns_psmdb_error_and_the_member_starts_again(
    make_member: MemberFactory, rotate, policy_proxy, kmiplab_net: str, kmip_server: PyKmipServer
) -> None:
    proxy = policy_proxy(PROXY_OCTET, allowed=None)
    member = make_member(servers=[proxy.address])
    old = member.storage_key_id()
    objects = kmip_object_count(kmip_server)
    proxy.stop()

    result, run = rotate(member)

    assert run.rc != 0 and result["error_kind"] == "rotation_failed", run.explain()
    assert result["run"]["rc"] == 233 and "1001" in result["run"]["rc_meaning"]
    error = result["mongod_error"]
    assert error["what"] == "Can't create encryption key database"
    assert "KMIP sessions failed for all the server hosts" in error["reason"]
    assert error["document"]["reason"]["what"] == "key reading failed", "the nested document is kept"
    assert error["message"].startswith("Can't create encryption key database: key reading failed: reading the")
    assert result["member_state"]["state"] == "ok" and old in result["msg"]
    assert kmip_object_count(kmip_server) == objects, "no key was registered"
    assert member.storage_key_id() == old and not (member.db_path / "key.db.rotation").exists()
    assert member.foreign_files() == []

    policy_proxy(PROXY_OCTET, allowed=None)  # the KMS is back
    assert member.started_key() == old


def test_kms_refusing_register_leaves_no_orphan_key(
    make_member: MemberFactory, rotate, policy_proxy, kmip_server: PyKmipServer
) -> None:
    proxy = policy_proxy(PROXY_OCTET + 1, allowed={enums.Operation.GET, enums.Operation.GET_ATTRIBUTES})
    # the member registers its first key through an unrestricted proxy, then the KMS narrows
    open_proxy = policy_proxy(PROXY_OCTET + 2, allowed=None)
    member = make_member(servers=[open_proxy.address])
    old = member.storage_key_id()
    member.kmip.servers = [proxy.address]
    member.write_config()
    objects = kmip_object_count(kmip_server)

    result, run = rotate(member)

    assert result["error_kind"] == "rotation_failed", run.explain()
    error = result["mongod_error"]
    assert error["what"] == "Can't rotate master encryption key"
    assert error["document"]["reason"]["what"] == "key saving failed"
    assert error["reason"].startswith("saving the master key to the KMIP server failed")
    assert "Register" in proxy.operations(allowed=False)
    assert kmip_object_count(kmip_server) == objects, "the generated key was never registered"
    assert result["member_state"]["state"] == "ok"
    assert not (member.db_path / "key.db.rotation").exists(), "PSMDB removed its clone"
    assert member.started_key() == old


# -- interrupted rotations (the emulator's crash hooks) -----------------------------------------


def test_leftover_rotation_dir(make_member: MemberFactory, rotate, info, kmip_server: PyKmipServer) -> None:
    member = make_member()
    old = member.storage_key_id()
    objects = kmip_object_count(kmip_server)
    member.write_environment_file(PSMDB_EMULATOR_TEST_HOOK="rotation-clone:crash")

    killed, run = rotate(member)

    assert killed["error_kind"] == "rotation_failed", run.explain()
    assert killed["run"]["rc"] == -9 and "SIGKILL" in killed["run"]["rc_meaning"]
    assert killed["member_state"]["state"] == "leftover_rotation_dir"
    assert (member.db_path / "key.db.rotation").is_dir() and member.storage_key_id() == old
    assert kmip_object_count(kmip_server) == objects
    del member.environment["PSMDB_EMULATOR_TEST_HOOK"]
    member.write_environment_file()
    assert member.started_key() == old, "a leftover key.db.rotation does not keep the member from starting"

    report, _ = info(member)
    assert report["member_state"]["state"] == "leftover_rotation_dir"
    assert "safe once no mongod runs" in report["key_db_rotation"]["meaning"]
    before = member.fingerprint()
    refused, run = rotate(member)
    assert refused["error_kind"] == "leftover_rotation_dir" and "Nothing was done" in refused["msg"]
    assert "remove_leftover_rotation_dir" in refused["msg"]
    planned, run = rotate(member, check=True, remove_leftover_rotation_dir=True)
    assert [a["action"] for a in planned["plan"]["actions"]][:1] == ["remove_leftover_rotation_dir"]
    assert member.fingerprint() == before, "neither the refusal nor check mode touched anything"

    result, run = rotate(member, remove_leftover_rotation_dir=True)

    assert run.rc == 0 and result["removed_leftover_rotation_dir"] is True, run.explain()
    assert member.storage_key_id() == result["new_key_identifier"] != old
    assert member.foreign_files() == []
    assert member.started_key() == result["new_key_identifier"]


def test_crash_after_the_swap_is_reported_with_its_recovery(make_member: MemberFactory, rotate, info) -> None:
    member = make_member()
    old = member.storage_key_id()
    member.write_environment_file(PSMDB_EMULATOR_TEST_HOOK="rotation-metadata:crash")

    killed, run = rotate(member)

    assert killed["error_kind"] == "rotation_failed", run.explain()
    state = killed["member_state"]
    assert state["state"] == "metadata_not_written", state
    new = killed["registered_key_identifier"]
    assert state["interrupted_new_key_identifier"] == new != old
    assert any("key.db.rotated" in step for step in state["recovery"])
    assert member.storage_key_id() == old, "storage.bson still names the old key"
    del member.environment["PSMDB_EMULATOR_TEST_HOOK"]
    member.write_environment_file()

    code, _ = member.start_fails()
    assert code == 233, "as documented, the next normal start fails"
    report, _ = info(member)
    assert report["member_state"]["state"] == "metadata_not_written", "recognised from the log, after a failed start"
    assert report["member_state"]["interrupted_new_key_identifier"] == new
    before = member.fingerprint()
    refused, _ = rotate(member, remove_leftover_rotation_dir=True)
    assert refused["error_kind"] == "interrupted_rotation" and refused["member_state"]["recovery"]
    assert member.fingerprint() == before, "the refusal made nothing worse"

    # the documented recovery: the new keystore aside, the old one back
    os.rename(member.db_path / "key.db", member.root / "key.db.interrupted")
    os.rename(member.db_path / "key.db.rotated", member.db_path / "key.db")
    assert member.started_key() == old


def test_crash_between_the_renames_is_refused(make_member: MemberFactory, rotate, info) -> None:
    member = make_member()
    old = member.storage_key_id()
    member.write_environment_file(PSMDB_EMULATOR_TEST_HOOK="rotation-swap:crash")

    killed, run = rotate(member)

    assert killed["member_state"]["state"] == "swap_interrupted", run.explain()
    assert not (member.db_path / "key.db").exists()
    del member.environment["PSMDB_EMULATOR_TEST_HOOK"]
    member.write_environment_file()
    report, _ = info(member)
    assert report["member_state"]["state"] == "swap_interrupted"
    refused, _ = rotate(member)
    assert refused["error_kind"] == "interrupted_rotation"
    os.rename(member.db_path / "key.db.rotated", member.db_path / "key.db")
    shutil.move(member.db_path / "key.db.rotation", member.root / "key.db.rotation.aside")
    assert member.started_key() == old


# -- encryption_info of a running member, and secrets -------------------------------------------


@pytest.mark.parametrize("encryption_status", [False, True], ids=["7.0.14-8", "with-encryptionAtRest"])
def test_encryption_info_of_a_running_member(make_member: MemberFactory, info, encryption_status: bool) -> None:
    member = make_member()
    key = member.storage_key_id()
    env = {"PSMDB_EMULATOR_ENCRYPTION_STATUS": "1"} if encryption_status else {}
    running = member.start(serve=True, env=env)

    report, run = info(member, login_host=member.address, login_port=member.port)

    assert run.rc == 0, run.explain()
    assert report["running"] is True and report["lock"]["pid"] == running.pid
    server = report["server"]
    assert server["queried"] is True and server["same_process"] is True and server["error"] is None
    assert server["encryption_at_rest_supported"] is encryption_status
    assert report["key_identifier"] == key and report["key_identifier_sources"]["storage_bson"] == key
    assert report["key_identifier_sources"]["log"] == key
    if encryption_status:
        assert server["encryption_at_rest"]["encryptionKeyId"] == {"kmip": {"keyId": key}}
        assert report["key_identifier_sources"]["server_status"] == key
    else:
        assert server["encryption_at_rest"] is None
        assert any("no serverStatus().encryptionAtRest" in note for note in report["notes"])
    assert report["log"]["runs"][0]["outcome"] == "running"


def test_no_password_in_verbose_output(make_member: MemberFactory, info, rotate, pki: LabPki) -> None:
    password = pki.encrypted_client.password
    assert password
    member = make_member(password=True)
    old = member.storage_key_id()
    # PSMDB echoes the password in getCmdLineOpts (parsed and argv) and in log 21951
    member.start("--kmipClientCertificatePassword", password, serve=True)
    assert password in member.log_path.read_text(), "the emulator echoes it as PSMDB does"

    report, run = info(member, verbosity=3, login_host=member.address, login_port=member.port, query_kmip=True)

    assert run.rc == 0, run.explain()
    argv = report["server"]["command_line"]["argv"]
    assert argv[argv.index("--kmipClientCertificatePassword") + 1] == MASK
    assert report["server"]["command_line"]["kmip"]["clientCertificatePassword"] == MASK
    assert report["configured"]["kmip"]["clientCertificatePassword"] == MASK
    assert report["kmip_key"]["state"] == "Active", "the member's identity opened its encrypted PEM"
    assert password not in run.stdout + run.stderr
    member.stop_all()

    result, run = rotate(member, verbosity=3)
    assert run.rc == 0 and result["new_key_identifier"] != old, run.explain()
    assert password not in run.stdout + run.stderr
    failed, run = rotate(member, verbosity=3, new_key_identifier="no-such-key")
    assert failed["error_kind"] == "rotation_failed" and "absent" in failed["msg"]
    assert failed["mongod_error"]["what"] == "Can't rotate master encryption key"
    assert password not in run.stdout + run.stderr
    assert member.started_key() == result["new_key_identifier"], "the failed rotation left the member startable"
