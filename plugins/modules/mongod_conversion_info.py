#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_conversion_info
short_description: Pre-flight facts for converting a member's existing data to KMIP by initial sync
version_added: 0.1.0
description:
  - Read-only. Says whether one member can be converted to KMIP encryption by a re-encrypting initial sync (its
    dbPath set aside, mongod started empty with KMIP), and why not.
  - "What the dbPath holds (RV(data_encryption): C(kmip), C(vault), C(keyfile), C(unencrypted) or C(none)) and
    what mongod.conf configures (RV(config_key_management)); a member on KMIP in both is RV(already_kmip) - skip it.
    Key-file data carries no encryption options in C(storage.bson); its keystore C(key.db) tells it from plain data."
  - "Disk: initial sync writes a new copy beside the set-aside one, on the same filesystem: RV(free_bytes) must hold
    RV(data_bytes) x O(disk_headroom)."
  - "Time: the initial sync takes about O(sync_startup_seconds) + RV(data_bytes) / O(copy_rate_mib_per_second); the
    sync source's oplog must cover that times O(oplog_window_margin), or the member falls off the oplog (too stale,
    RECOVERING) and never finishes. The window is O(oplog_window_seconds), or, with O(read_oplog_window=true), read
    from the mongod the connection options point at (the sync source - usually the primary): first and last entry
    of C(local.oplog.rs), as C(rs.printReplicationInfo()) does, grown to the oplog's capacity while it is not full
    yet (window x C(collStats) C(maxSize) / C(size)): an oplog not full truncates nothing, so a young set is judged
    on what its oplog will hold at the write rate so far, not on its age."
  - RV(problems) lists every reason not to start, RV(ready) is true when there is none.
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4
  - ruamel.yaml
extends_documentation_fragment:
  - kmipops.psmdb.mongod_connection
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_mongod
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - The connection options are used only with O(read_oplog_window=true); point them at the sync source, not at the
    member being converted.
  - With authentication, reading C(local.oplog.rs) needs a user with read access to the C(local) database (for
    example C(clusterMonitor) or C(root)).
seealso:
  - module: kmipops.psmdb.mongod_dbpath
  - ref: ansible_collections.kmipops.psmdb.docsite.guide_encrypt_existing
    description: Encrypting existing data with KMIP (the kmip_conversion role and the encrypt_existing_data playbook).
options:
  config:
    description: The member's mongod.conf.
    type: path
    default: /etc/mongod.conf
  db_path:
    description: The dbPath, when not C(storage.dbPath) of O(config).
    type: path
  copy_rate_mib_per_second:
    description:
      - How fast an initial sync copies data into this member, in MiB/s - measured on an earlier conversion of the
        fleet, or an estimate. A logical initial sync copies documents and rebuilds indexes; tens of MiB/s is common.
    type: float
    default: 20.0
  sync_startup_seconds:
    description:
      - The fixed part of an initial sync in seconds, whatever the data size - mongod's start-up, choosing a sync
        source, setting up the clone, the catch-up - added to the copy time (at least 0). A conversion's JSON report
        gives each member's data size and initial sync time; the intercept of a straight line through them is this
        figure.
    type: float
    default: 10.0
  oplog_window_seconds:
    description:
      - The sync source's oplog window in seconds, when known - for example C(oplog_capacity_window_seconds) of
        P(kmipops.psmdb.mongod_replset_info#module) (what the oplog will hold; its C(oplog_window_seconds) is what it
        holds now).
    type: float
  read_oplog_window:
    description: Read the oplog window from the mongod the connection options point at.
    type: bool
    default: false
  oplog_window_margin:
    description: The oplog window must be at least the estimated sync time times this factor (at least 1).
    type: float
    default: 3.0
  disk_headroom:
    description: Free space needed on the dbPath's filesystem, as a multiple of the data size (at least 1).
    type: float
    default: 1.2
"""

EXAMPLES = r"""
- name: Can this member be converted? (oplog window of the primary)
  kmipops.psmdb.mongod_conversion_info:
    login_host: db1.example.net
    tls: true
    tls_ca_file: /etc/mongod/tls/ca.pem
    read_oplog_window: true
    copy_rate_mib_per_second: 50
  register: conversion

- name: Refuse before anything is touched
  ansible.builtin.assert:
    that: conversion.ready or conversion.already_kmip
    fail_msg: "{{ conversion.problems }}"
"""

RETURN = r"""
db_path:
  description: The dbPath (symlinks resolved).
  returned: always
  type: str
data_encryption:
  description: What the dbPath holds - V(kmip), V(vault), V(keyfile), V(unencrypted) or V(none).
  returned: always
  type: str
config_key_management:
  description: What mongod.conf configures - V(kmip), V(vault), V(keyfile) or V(none).
  returned: always
  type: str
already_kmip:
  description: Data and configuration are both on KMIP - nothing to convert.
  returned: always
  type: bool
data_bytes:
  description: Disk space the dbPath's files occupy.
  returned: always
  type: int
free_bytes:
  description: Free space for an unprivileged user on the dbPath's filesystem.
  returned: always
  type: int
needed_bytes:
  description: RV(data_bytes) x O(disk_headroom).
  returned: always
  type: int
disk_ok:
  description: RV(free_bytes) >= RV(needed_bytes).
  returned: always
  type: bool
estimated_sync_seconds:
  description: O(sync_startup_seconds) + RV(data_bytes) / O(copy_rate_mib_per_second).
  returned: always
  type: float
oplog_window_seconds:
  description: The sync source's oplog window used, at its capacity when read here (null when unknown).
  returned: always
  type: float
required_oplog_window_seconds:
  description: RV(estimated_sync_seconds) x O(oplog_window_margin).
  returned: always
  type: float
oplog_ok:
  description: The window covers the estimate with the margin (null when the window is unknown).
  returned: always
  type: bool
set_aside:
  description: The member's active set-aside copy (see M(kmipops.psmdb.mongod_dbpath)), or null.
  returned: always
  type: dict
set_aside_copies:
  description: Every manifest of a set-aside copy of this dbPath.
  returned: always
  type: list
  elements: dict
problems:
  description: Every reason not to convert the member now (empty when RV(ready)).
  returned: always
  type: list
  elements: str
ready:
  description: Not on KMIP yet, and no problem.
  returned: always
  type: bool
error_kind:
  description: C(invalid_option), C(unreachable), C(auth_failed), C(command_failed), C(missing_dependency).
  returned: on failure
  type: str
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.preflight import (
    PREFLIGHT_ARGSPEC,
    Preflight,
    oplog_window,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule


def run(module: MongodMemberModule) -> dict[str, Any]:
    oplog = None
    if module.params["read_oplog_window"] and module.params["oplog_window_seconds"] is None:
        client = module.connect()
        try:
            oplog = {**oplog_window(client, module.member), "source": module.member}
        finally:
            client.close()
    return Preflight(module.params, oplog).run()


def main() -> None:
    module = MongodMemberModule(argument_spec=PREFLIGHT_ARGSPEC, supports_check_mode=True, dependencies=(RUAMEL_YAML,))
    module.exit_json(**module.run_or_fail(run))


if __name__ == "__main__":
    main()
