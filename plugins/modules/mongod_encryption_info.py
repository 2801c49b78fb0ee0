#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_encryption_info
short_description: Which KMIP master key a mongod member uses, running or stopped
version_added: 0.1.0
description:
  - Reports which master key the member's data is encrypted with, from every place that says it, and whether
    the member can start as it is. Runs on the member's host and reads its files; read-only.
  - C(<dbPath>/storage.bson) (plain BSON, readable while mongod runs) names the key the data is encrypted
    with, C(storage.options.encryption.kmip.keyId). This is what mongod reads at start and the answer of
    RV(key_identifier) unless a running mongod reports its key itself.
  - mongod's own log (C(systemLog.path) of the config) says which key each run read (29115), registered
    (29116) or rotated to (29111), and how the run ended (29120 with PSMDB's own error). The log is read
    backwards from its end in bounded chunks, at most O(log_scan_bytes) in all, continuing into rotated copies
    (C(mongod.log.<timestamp>), C(mongod.log.1); compressed copies are skipped and listed).
  - When mongod runs (its dbPath's C(mongod.lock) is held, probed with C(flock) as mongod takes it) and
    O(query_server=true), it is asked C(serverStatus) and C(getCmdLineOpts) over the connection options. Its
    answers are used only when its pid is the pid in C(mongod.lock). C(serverStatus().encryptionAtRest) is
    used only when the build has it; PSMDB 7.0.14-8 and most 6.0/7.0 builds do not, which RV(notes) says.
  - The configured C(security.kmip) of the config file and the C(getCmdLineOpts) answer are returned with the
    client certificate password masked. PSMDB echoes that password in C(getCmdLineOpts) (C(parsed) and
    C(argv)) and in log 21951; the module masks it everywhere and registers every value it meets as a
    secret, so it appears nowhere in the task output.
  - Recognises the states an interrupted rotation leaves (a leftover C(key.db.rotation); no C(key.db) after a
    crash between the keystore renames; C(key.db) under the new key while storage.bson names the old one) and
    returns the documented recovery in RV(member_state).
  - With O(query_kmip=true), reads the key's state and dates on the KMIP server with the member's own identity
    (the C(security.kmip) options of its config), through the collection's KMIP client (the same failover,
    timeouts and TLS checks as mongod).
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4 (its C(bson) package reads C(storage.bson); the client asks a running mongod)
  - ruamel.yaml
  - pykmip and cryptography (only with O(query_kmip=true))
extends_documentation_fragment:
  - kmipops.psmdb.mongod_connection
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_mongod
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
notes:
  - Run it as root (C(become=true)) or as the service user, so that the dbPath, the log and C(mongod.lock) can be
    read. A lock that cannot be probed is reported in RV(lock) with C(held=null).
  - The connection options are used only when mongod runs. With authentication, O(login_user) needs
    C(serverStatus) and C(getCmdLineOpts) (role C(clusterMonitor)). A failed query is reported in RV(server),
    never a task failure.
options:
  config:
    description:
      - The member's mongod.conf, the file its service starts mongod with (C(-f)/C(--config)). Its C(storage.dbPath)
        (default C(/data/db), mongod's), C(systemLog), C(processManagement) and C(security) sections are read.
    type: path
    default: /etc/mongod.conf
  query_server:
    description: Ask the running mongod (C(serverStatus), C(getCmdLineOpts)) with the connection options.
    type: bool
    default: true
  query_kmip:
    description:
      - Read the master key's attributes (state, initial, activation and deactivation dates) on the KMIP server
        with the member's identity from its config.
      - One KMIP session (Get Attributes only); a failure is reported in RV(kmip_key), never a task failure.
    type: bool
    default: false
  log_scan_bytes:
    description: How many bytes of mongod's log (current file and rotated copies together) are read at most. 1 to
      1073741824 (1 GiB).
    type: int
    default: 16777216
seealso:
  - module: kmipops.psmdb.mongod_rotate_master_key
  - module: kmipops.psmdb.kmip_key_info
"""

EXAMPLES = r"""
- name: Which master key does this member use?
  kmipops.psmdb.mongod_encryption_info:
    config: /etc/mongod.conf
  become: true
  register: encryption

- name: Prove the rotation changed the key (storage.bson and mongod's own log agree)
  ansible.builtin.assert:
    that:
      - encryption.key_identifier != old_key_id
      - encryption.key_identifier_sources.log == encryption.key_identifier
      - encryption.member_state.state == 'ok'

- name: Ask the running member and the KMS as well
  kmipops.psmdb.mongod_encryption_info:
    config: /etc/mongod.conf
    login_port: 27017
    login_user: clusterMonitorUser
    login_password: "{{ vault_monitor_password }}"
    query_kmip: true
  become: true
  register: encryption
"""

RETURN = r"""
key_identifier:
  description:
    - The KMIP master key the member uses - C(serverStatus().encryptionAtRest) of the running mongod when its build
      reports it, else the key id of C(storage.bson). Null when the data is not encrypted with KMIP.
  returned: always
  type: str
  sample: "42"
key_identifier_sources:
  description: Every place that names a key, null where it says nothing.
  returned: always
  type: dict
  contains:
    storage_bson:
      description: C(storage.options.encryption.kmip.keyId) of C(<dbPath>/storage.bson).
      type: str
    log:
      description: The key of the newest run in mongod's log that opened its keystore (or completed a rotation).
      type: str
    server_status:
      description: C(serverStatus().encryptionAtRest.encryptionKeyId.kmip.keyId), when the build has it.
      type: str
    config:
      description: C(security.kmip.keyIdentifier) of the config file (a start with it fails when it differs from
        storage.bson).
      type: str
    command_line:
      description: C(security.kmip.keyIdentifier) the running mongod was started with (C(getCmdLineOpts)).
      type: str
running:
  description: A mongod holds the dbPath's C(mongod.lock) (probed with C(flock), as mongod takes it).
  returned: always
  type: bool
lock:
  description: C(path), C(exists), C(held) (null when it could not be probed), C(pid) written in it, C(pid_alive),
    C(unclean_shutdown) (the file names a pid but nobody holds it), C(error).
  returned: always
  type: dict
pid_file:
  description: C(processManagement.pidFilePath) - C(path), C(pid), C(alive), C(mongod) (the pid is a live mongod).
  returned: when the config sets processManagement.pidFilePath
  type: dict
db_path:
  description: The dbPath read (C(storage.dbPath), default C(/data/db)).
  returned: always
  type: str
storage:
  description: C(storage_bson) (the file exists), C(encryption) (C(kmip), C(vault), C(keyfile), C(unencrypted) or
    null for no data), C(key_identifier).
  returned: always
  type: dict
key_db:
  description: C(<dbPath>/key.db), the keystore - C(path), C(present), C(modified).
  returned: always
  type: dict
key_db_rotated:
  description: C(<dbPath>/key.db.rotated) - C(path), C(present), C(modified), and C(meaning) when present. The
    keystore under the key before the last rotation; it and backups taken before that rotation need the old key,
    so the old key must stay on the KMS.
  returned: always
  type: dict
key_db_rotation:
  description:
    - C(<dbPath>/key.db.rotation) - C(path), C(present), C(modified), and C(meaning) when present.
    - Present only after a rotation that was killed (PSMDB removes it on any failure it survives). It blocks every
      later rotation, holds nothing the current key cannot rebuild, and is safe to remove once no mongod runs on the
      dbPath (P(kmipops.psmdb.mongod_rotate_master_key#module) does it with
      O(kmipops.psmdb.mongod_rotate_master_key#module:remove_leftover_rotation_dir=true)).
  returned: always
  type: dict
member_state:
  description: Whether the keystore is in a state mongod starts from.
  returned: always
  type: dict
  contains:
    state:
      description:
        - C(ok); C(running) (mongod runs); C(rotation_running) (a rotation runs now); C(no_data); C(not_kmip).
        - C(leftover_rotation_dir) - see RV(key_db_rotation); the member starts on its key.
        - C(swap_interrupted) - no C(key.db), a rotation died between its two renames. Do not start mongod as it is.
        - C(metadata_not_written) - C(key.db) is under the new key while storage.bson names the old one (a rotation
          died after the renames); recognised from mongod's log, since on disk it looks like a completed rotation.
          The next start fails with 29120.
      type: str
    message:
      description: What the state means.
      type: str
    recovery:
      description: The documented recovery steps, in order, for the interrupted states.
      type: list
      elements: str
    interrupted_new_key_identifier:
      description: The key an interrupted rotation was rotating to, from its log lines.
      type: str
configured:
  description: What the config file sets - C(enabled), C(cipher_mode), C(kmip) (C(security.kmip) with
    C(clientCertificatePassword) masked), C(key_identifier), C(rotate_master_key).
  returned: always
  type: dict
log:
  description:
    - What mongod's log says - C(path), C(files_read), C(skipped_compressed), C(bytes_read), C(truncated) (the
      budget ended before the oldest line), C(error), C(key_identifier) (see RV(key_identifier_sources.log)),
      C(last_rotation) (C(at), C(old_key_identifier), C(new_key_identifier)).
    - C(runs), newest first, at most 10 - C(pid), C(started_at), C(complete) (its start line was read),
      C(rotation) (started with rotateMasterKey), C(outcome) (C(running), C(rotated), C(encryption_error),
      C(failed), C(clean_exit), C(ended_without_shutdown_line)), C(key_ids_read), C(key_ids_created),
      C(rotated_from), C(rotated_to), C(key_in_use), C(pre_active_key), C(encryption_error) (PSMDB's 29120
      error, as RV(kmipops.psmdb.mongod_rotate_master_key#module:mongod_error)), C(fatal_error), C(exit_code),
      C(last_at).
  returned: when the config logs to a file
  type: dict
server:
  description:
    - The running mongod's answers - C(queried), C(member), C(pid), C(same_process) (its pid is the lock's),
      C(encryption_at_rest_supported), C(encryption_at_rest) (C(serverStatus().encryptionAtRest) as returned, null
      when the build lacks it), C(command_line) (C(argv) and C(kmip) of C(getCmdLineOpts) with every password
      masked, C(config), C(key_identifier), C(rotate_master_key)), C(error), C(error_kind) (the kinds of
      P(kmipops.psmdb.mongod_member_info#module), or C(other_process)).
    - C(queried=false) with a C(reason) when mongod does not run.
  returned: when O(query_server=true)
  type: dict
kmip_key:
  description: The key on the KMIP server (the fields of P(kmipops.psmdb.kmip_key_info#module)'s keys, including
    C(state), C(initial_date), C(activation_date), C(deactivation_date), and C(server)), or C(error) and
    C(error_kind).
  returned: when O(query_kmip=true)
  type: dict
problems:
  description: What keeps the member from starting as it should, as sentences (a config that names another key,
    rotateMasterKey left in the config, an interrupted rotation, sources that disagree).
  returned: always
  type: list
  elements: str
notes:
  description: Information that is not a problem (no encryptionAtRest in this build, an unclean last shutdown,
    key.db.rotated still needing the old key).
  returned: always
  type: list
  elements: str
error_kind:
  description:
    - Why the task failed - C(invalid_option) (the config cannot be read or is not valid, O(log_scan_bytes) not
      positive, named in C(option)), C(missing_dependency) (a Python library missing on the host).
    - Problems of the member, the server or the KMS are results, not failures.
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: invalid_option
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.info import (
    INFO_ARGSPEC,
    INFO_BOUNDS,
    gather,
    query_server,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_config import MemberConfig


def run(module: MongodMemberModule) -> dict[str, Any]:
    params = module.params
    config = MemberConfig.read(params["config"])
    module.no_log_values.update(config.secrets)

    def ask(lock_pid: int | None) -> dict[str, Any]:
        client = module.connect()
        try:
            return query_server(client, module.member, lock_pid, module.no_log_values.add)
        finally:
            client.close()

    return gather(
        config,
        params["log_scan_bytes"],
        query=ask if params["query_server"] else None,
        query_kmip=params["query_kmip"],
    )


def main() -> None:
    module = MongodMemberModule(
        argument_spec=INFO_ARGSPEC, bounds=INFO_BOUNDS, dependencies=(RUAMEL_YAML,), supports_check_mode=True
    )
    module.exit_json(**module.run_or_fail(run))


if __name__ == "__main__":
    main()
