#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_rotate_master_key
short_description: Rotate the KMIP master key of a stopped mongod member (PSMDB's one-shot rotation)
version_added: 0.1.0
description:
  - Runs Percona Server for MongoDB's master key rotation on one stopped member - mongod started once with the
    member's own config plus C(--kmipRotateMasterKey), which re-encrypts the keystore (C(key.db)) under a new
    master key, writes the new key id into C(storage.bson) and exits - and proves the result.
  - The member must be stopped. The module refuses, changing nothing, while the dbPath's C(mongod.lock) is held
    (probed with C(flock) as mongod takes it), while C(processManagement.pidFilePath) names a live mongod, and, when
    O(service_name) is given, while that systemd unit is active. The rotation happens before mongod joins its
    replica set or accepts connections, so the member only has to be stopped, not removed from the set.
  - mongod runs as O(service_user) (default C(mongod)) - the module drops privileges (uid, gid, supplementary
    groups) in the child before C(exec) - so no file in the dbPath or the log directory becomes root's. Before it
    runs, the module checks that this user can read and write the files mongod needs (C(storage.bson),
    C(mongod.lock), C(key.db), C(key.db.rotated), the dbPath, the log file) and read the config.
  - "How the new key is chosen, and C(security.kmip.keyIdentifier) of the config: with O(new_key_identifier), mongod
    gets C(--kmipKeyIdentifier <new>), which wins over the config. Without it, when the config names the key the
    data is encrypted with now, PSMDB would refuse (C(The master encryption key rotation is in effect but the
    provided ... key identifier is equal to that the system is already configured with)), so mongod runs with a
    temporary copy of the config without C(keyIdentifier) (mode 0600, owned by O(service_user), in a private 0700
    directory, removed afterwards; the other sections keep every byte, the security section its values and
    comments) and generates a new key. When the config
    names another key, that key is the new one (MongoDB's documented manual procedure). Otherwise mongod generates
    and registers a new key (Register, plus Activate unless C(activateKeys=false))."
  - Waits for mongod to exit, at most O(timeout) seconds. Success needs exit status 0 B(and) log line 29111
    C(Rotated master encryption key) from this run with the old key as C(oldKeyIdentifier) B(and) storage.bson
    naming the new key. With C(processManagement.fork=true) the parent exits with the child's status and the log
    goes to C(systemLog.path), which is read from where it ended before the run.
  - On failure the task fails with PSMDB's own error (RV(mongod_error), the nested 29120 document walked into one
    message) and RV(member_state). PSMDB itself leaves the member as it was after any failure it survives (it
    registers a generated key only after the keystore clone, and removes C(key.db.rotation) on failure), so the
    member then starts on its old key. A run that was killed may leave a C(key.db.rotation) or, between the
    keystore renames, a keystore under the new key - RV(member_state) says which, exactly, and gives the
    documented recovery.
  - A leftover C(key.db.rotation) (from a killed rotation) blocks PSMDB's rotation. The module refuses and explains
    unless O(remove_leftover_rotation_dir=true), when it removes the directory while holding C(mongod.lock) itself
    (so no mongod can start meanwhile), then rotates. The directory holds nothing the current key cannot rebuild.
  - "Why not through the systemd unit: a unit with C(Restart=always) (or C(on-success)) would start mongod again
    after the rotation's clean exit, with C(rotateMasterKey) still in effect, and rotate again or fail; and the
    unit's own C(ExecStart) (C(mongod $OPTIONS), or C(--config /etc/mongod.conf)) cannot take the one-shot
    option without editing the unit or the config. So the module runs mongod itself, as the unit's user, with the
    same config, and uses O(service_name) only to check that the unit is stopped."
  - "Percona's unit reads C(EnvironmentFile=-/etc/default/mongod) (Debian, Ubuntu) or C(/etc/sysconfig/mongod)
    (RHEL) and runs C(mongod ${OPTIONS}). With O(environment_file) the module reads that file as systemd does and
    gives its variables to mongod; C(OPTIONS) may only name the config file (C(-f)/C(--config)), which must be
    O(config): any other mongod option there is refused by name, because the rotation would not see it. C(NUMACTL),
    C(STDOUT) and C(STDERR) (the unit's wrapper) are not used. The unit's C(ExecStartPre) helper (pid file,
    transparent huge pages) is not run. Without O(environment_file) mongod gets systemd's minimal environment."
  - Check mode runs every check and returns the plan (RV(plan)) - before, after and the exact actions, the command
    line included - without touching anything.
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4 (its C(bson) package reads C(storage.bson))
  - ruamel.yaml
extends_documentation_fragment:
  - kmipops.psmdb.attributes
attributes:
  check_mode:
    support: full
    details: Every check runs; the plan is returned and nothing is changed, created or started.
  diff_mode:
    support: full
    details: The key id and the keystores of the dbPath before and after (a generated key is named after the run).
notes:
  - In no action group - it takes no connection options (mongod is stopped).
  - Needs root (C(become=true)) to start mongod as O(service_user); running as O(service_user) itself works too.
  - The old key stays on the KMS. C(key.db.rotated) and every backup taken before the rotation need it; the module
    never revokes or destroys a key.
  - Afterwards, C(security.kmip.keyIdentifier) of the config must not name the old key, and
    C(security.kmip.rotateMasterKey) must not be set, or the next start fails or rotates again; RV(follow_up) lists
    what applies (P(kmipops.psmdb.mongod_kmip_config#module) does both).
options:
  config:
    description: The member's mongod.conf, the file its service starts mongod with. Its C(storage.dbPath) is the
      dbPath rotated (default C(/data/db), mongod's).
    type: path
    default: /etc/mongod.conf
  binary:
    description: The mongod binary.
    type: path
    default: /usr/bin/mongod
  service_user:
    description: The user mongod runs as (C(User=) of its unit); its primary group and supplementary groups apply.
    type: str
    default: mongod
  service_name:
    description:
      - The member's systemd unit (for example C(mongod) or C(mongod.service)). The module refuses while it is
        active, activating, deactivating or reloading, and reports its C(Restart=) setting. Never started or
        stopped by the module.
    type: str
  environment_file:
    description:
      - The unit's C(EnvironmentFile) (C(/etc/default/mongod), C(/etc/sysconfig/mongod)). Its variables go into
        mongod's environment; C(OPTIONS) may only name the config file.
    type: path
  new_key_identifier:
    description:
      - Rotate to this existing key (KMIP unique identifier). It must be usable by the member's identity (Active
        when C(activateKeys=true); PSMDB reads it with Get Attributes and Get).
      - When the data already uses it, nothing is done (C(changed=false)).
      - When not set, mongod generates a new key and registers it, unless the config names another key than the
        current one (that key is then the new one).
    type: str
  current_key_identifier:
    description:
      - Rotate only when the data is encrypted with this key. When storage.bson names another key, nothing is
        done (C(changed=false), RV(nothing_to_do) says why), which makes re-runs after a rotation to a generated
        key idempotent.
    type: str
  remove_leftover_rotation_dir:
    description:
      - Remove a C(key.db.rotation) left by a killed rotation before rotating. Without it the module refuses and
        explains. Never removed while a mongod holds the dbPath, nor in an interrupted state other than this one.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for mongod to exit. At the deadline mongod is left running (never killed - a kill between
        the keystore renames leaves the member unable to start) and the task fails with C(error_kind=timeout).
      - mongod's own KMIP timeouts bound a rotation (C(connectTimeoutMS) per server and pass), so the deadline is
        for a process that hangs.
      - 1 to 86400 (one day).
    type: int
    default: 600
seealso:
  - module: kmipops.psmdb.mongod_encryption_info
  - module: kmipops.psmdb.mongod_kmip_config
  - module: kmipops.psmdb.kmip_key
"""

EXAMPLES = r"""
- name: Stop the member (a primary steps down first; mongod quiesces up to 15 s)
  ansible.builtin.systemd_service:
    name: mongod
    state: stopped
  become: true

- name: Rotate to a key mongod generates and registers
  kmipops.psmdb.mongod_rotate_master_key:
    config: /etc/mongod.conf
    service_name: mongod
    environment_file: /etc/default/mongod
  become: true
  register: rotation

- name: Make the config consistent (no keyIdentifier naming the old key, no rotateMasterKey)
  kmipops.psmdb.mongod_kmip_config:
    path: /etc/mongod.conf
    server_name: [kmip1.example.com, kmip2.example.com]
    server_ca_file: /etc/mongod/kmip-ca.pem
    client_certificate_file: /etc/mongod/kmip-client.pem
    key_identifier: "{{ rotation.new_key_identifier }}"
  become: true

- name: Start the member again
  ansible.builtin.systemd_service:
    name: mongod
    state: started
  become: true

- name: Rotate to a key registered beforehand, only if the member still uses the old one
  kmipops.psmdb.mongod_rotate_master_key:
    config: /etc/mongod.conf
    service_name: mongod
    current_key_identifier: "{{ old_key_id }}"
    new_key_identifier: "{{ new_key_id }}"
  become: true

- name: Show what a rotation would do, touching nothing
  kmipops.psmdb.mongod_rotate_master_key:
    config: /etc/mongod.conf
  become: true
  check_mode: true
  diff: true
  register: plan
"""

RETURN = r"""
old_key_identifier:
  description: The key the data was encrypted with before (storage.bson).
  returned: always
  type: str
  sample: "41"
new_key_identifier:
  description:
    - The key the data is encrypted with after the rotation (log 29111, checked against storage.bson).
    - In check mode the key that would be used, or null when mongod would generate it.
  returned: always
  type: str
  sample: "42"
new_key_source:
  description: C(given) (O(new_key_identifier)), C(config) (C(security.kmip.keyIdentifier) names another key than
    the current one) or C(generated) (mongod generates and registers it).
  returned: always
  type: str
temporary_config:
  description: mongod ran (or would run) with a temporary copy of the config without C(keyIdentifier), because the
    config names the current key.
  returned: always
  type: bool
command:
  description: The command line mongod was (or would be) started with; a temporary config is shown by what it is.
  returned: always
  type: list
  elements: str
  sample: ["/usr/bin/mongod", "--config", "/etc/mongod.conf", "--kmipRotateMasterKey"]
nothing_to_do:
  description: Why nothing was done (the data already uses O(new_key_identifier), or not O(current_key_identifier)).
  returned: always
  type: str
plan:
  description: What the module does, computed before anything is done; check mode returns it alone.
  returned: always
  type: dict
  contains:
    before:
      description: C(key_identifier) and the keystores of the dbPath now.
      type: dict
    after:
      description: The same after the rotation.
      type: dict
    actions:
      description: In order, each with C(action) (C(remove_leftover_rotation_dir), C(write_temporary_config),
        C(run_mongod_rotation), C(remove_temporary_config)), C(description), and C(path), C(argv), C(user) where
        they apply.
      type: list
      elements: dict
run:
  description: The mongod run.
  returned: when mongod ran
  type: dict
  contains:
    pid:
      description: Its process id (the forked child's with C(processManagement.fork)).
      type: int
    forked:
      description: mongod forked (C(processManagement.fork=true)).
      type: bool
    rc:
      description: The exit status (the fork parent's, which is the child's when it failed); null when it did not
        exit before the deadline; negative for a signal.
      type: int
      sample: 233
    rc_meaning:
      description: What it means, for example C(data-at-rest encryption error (exit code 1001)) for 233.
      type: str
    timed_out:
      description: mongod had not exited at the deadline (it is left running).
      type: bool
    stopped_listening:
      description: mongod started serving instead of rotating and was stopped with SIGTERM.
      type: bool
    duration_seconds:
      description: From start to exit.
      type: float
    stdout:
      description: The end of its standard output (the fork parent's lines), secrets masked.
      type: str
    stderr:
      description: The end of its standard error (option errors), secrets masked.
      type: str
log:
  description: This run's key lines of mongod's log (29115, 29116, 29039, 29111, 29120, 29124, 23016, 23138...), each
    with C(id), C(t), C(msg), C(attr). Never 21951, which echoes the KMIP password.
  returned: when mongod ran
  type: list
  elements: dict
mongod_error:
  description:
    - PSMDB's own 29120 error of the run, walked through its nesting - C(message) (every C(what) and the innermost
      reason joined), C(what) (the outer one, for example C(Can't rotate master encryption key) or C(Can't create
      encryption key database)), C(reason) (the innermost text), C(key_identifier), C(key_state), C(fields) (the
      other fields met, for example C(configured), C(provided), C(rotationKeyDatabaseDirectory),
      C(possibleRemediationActions)), C(document) (the original, also when it is a flat string).
  returned: on failure, when mongod logged 29120
  type: dict
fatal_error:
  description: Another fatal error of the run (20557 dbPath missing or locked, 28595 storage engine).
  returned: on failure
  type: str
registered_key_identifier:
  description: A key the failed run registered on the KMS before it stopped (used by no data; deactivate it once
    nothing needs it).
  returned: on failure, when the run logged 29116
  type: str
member_state:
  description:
    - The member after the run; on a refusal, the state that caused it.
    - After a failure that PSMDB survived the state is C(ok) and the member starts on its old key.
  returned: always
  type: dict
  contains:
    state:
      description:
        - C(ok), C(leftover_rotation_dir) (a C(key.db.rotation) left by a killed run; the member starts on its key),
          C(swap_interrupted) (no C(key.db), killed between the keystore renames),
          C(metadata_not_written) (C(key.db) under the new key, storage.bson naming the old one).
        - On refusals also C(no_data) and C(not_kmip).
      type: str
    message:
      description: What the state means and what to do.
      type: str
    recovery:
      description: The documented recovery steps, in order (for the interrupted states).
      type: list
      elements: str
    interrupted_new_key_identifier:
      description: The key the interrupted run was rotating to (registered on the KMS when generated).
      type: str
removed_leftover_rotation_dir:
  description: The leftover C(key.db.rotation) was removed.
  returned: when mongod ran
  type: bool
follow_up:
  description: What must happen before the member starts again (config keyIdentifier, rotateMasterKey, start,
    keeping the old key).
  returned: always
  type: list
  elements: str
notes:
  description: Information, such as the unit's C(Restart=) setting.
  returned: always
  type: list
  elements: str
service:
  description: The systemd unit's C(name), C(load_state), C(active_state), C(sub_state), C(main_pid), C(restart).
  returned: when O(service_name) is given
  type: dict
environment_file:
  description: C(path), C(variables) (names only), C(options_config) (the config C(OPTIONS) names), C(ignored).
  returned: when O(environment_file) is given
  type: dict
db_path:
  description: The dbPath rotated.
  returned: always
  type: str
error_kind:
  description:
    - Why the task failed, for playbooks to branch on. Nothing was changed unless said.
    - C(mongod_running) - the dbPath is locked, the pid file names a live mongod, or the unit is active (with C(lock),
      C(pid_file) or C(service)).
    - C(leftover_rotation_dir) - a C(key.db.rotation) blocks the rotation; see RV(member_state).
    - C(interrupted_rotation) - C(swap_interrupted) or C(metadata_not_written); follow RV(member_state.recovery).
    - C(not_kmip_encrypted) - the config does not configure KMIP, or the dbPath holds no KMIP-encrypted data.
    - C(service_user) - mongod cannot run as O(service_user) (no such user, no root, files it cannot use, named in
      C(paths)).
    - C(rotation_failed) - mongod ran and did not rotate, or the result was not proven; RV(mongod_error),
      RV(member_state), RV(run), RV(log).
    - C(timeout) - mongod did not exit within O(timeout); it is left running (RV(run.pid)).
    - C(invalid_option) - an option or the config cannot be valid (named in C(option)); C(missing_dependency).
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: rotation_failed
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO, RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.module import KmipOpsModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.errors import RotationError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.rotate import (
    ROTATE_ARGSPEC,
    ROTATE_BOUNDS,
    RotationBackend,
)


class RotateMasterKeyModule(KmipOpsModule):
    ARGUMENT_SPEC = ROTATE_ARGSPEC
    OPTION_BOUNDS = ROTATE_BOUNDS
    DEPENDENCIES = (PYMONGO, RUAMEL_YAML)


def run(module: RotateMasterKeyModule) -> dict[str, Any]:
    backend = RotationBackend(
        module.params, systemctl=lambda: module.get_bin_path("systemctl", required=True), warn=module.warn
    )
    try:
        plan = backend.plan()
    finally:
        module.no_log_values.update(backend.secrets)
    result: dict[str, Any] = {"changed": plan.changes, **plan.as_result()}
    if module._diff and plan.changes:
        result["diff"] = plan.diff()
    for note in plan.notes:
        module.warn(note)
    if not plan.changes or module.check_mode:
        return result
    try:
        outcome = backend.apply(plan)
    except RotationError as error:
        # a removed leftover key.db.rotation is a change even when the rotation then failed
        module.fail_from(error, changed=bool(error.facts.get("removed_leftover_rotation_dir")))
    result.update(outcome.as_result())
    if module._diff:
        plan.after["key_identifier"] = outcome.new_key
        plan.after["key.db"] = f"keystore under {outcome.new_key}"
        result["diff"] = plan.diff()
    return result


def main() -> None:
    module = RotateMasterKeyModule(supports_check_mode=True)
    module.exit_json(**module.run_or_fail(run))


if __name__ == "__main__":
    main()
