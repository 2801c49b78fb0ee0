#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_dbpath
short_description: Set a stopped member's dbPath aside for a re-encrypting initial sync, restore it, or purge it
version_added: 0.1.0
description:
  - Percona Server for MongoDB encrypts only data it writes from an empty dbPath, so existing data (plain, or
    encrypted with a key file or Vault) moves to KMIP by a rolling initial sync - each member emptied in turn and
    started with the KMIP settings. This module does the dbPath part of that, on one member.
  - O(state=set_aside) renames the dbPath to C(<dbPath>.pre-kmip-<UTC time>) in the same parent directory (same
    filesystem - no copy, no extra space, owner, mode and SELinux label kept; a dbPath that is a mount point is
    refused), saves a copy of O(config) next to it (C(<copy>.mongod.conf)), and creates an empty dbPath with the
    old one's owner, mode and SELinux label. A manifest C(<copy>.kmipops-conversion.json) records every step.
    A rename the kernel refuses (C(EXDEV) - for example a directory of a lower overlayfs layer, as in a container
    image) fails with C(not_same_filesystem) and leaves nothing behind.
  - O(state=restored) rolls the member back - removes the dbPath the set-aside step created (it holds only what
    initial sync copied; a dbPath with another inode that is not empty is refused), renames the set-aside copy
    back and restores the saved mongod.conf when it differs.
  - O(state=purged) removes the set-aside copies of the dbPath (and their saved mongod.conf), only when the dbPath
    itself now holds KMIP-encrypted data; the manifests stay as the record. Nothing else ever deletes a copy.
  - O(state=set_aside) and O(state=restored) refuse, changing nothing, while the systemd unit O(service_name) is
    active or a process holds C(<dbPath>/mongod.lock).
  - Every state is idempotent - a second run reports C(changed=false) - and check mode returns the plan.
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
    details: Every check runs and RV(plan) says what would be done; nothing is renamed, created or removed.
  diff_mode:
    support: none
notes:
  - In no action group - it takes no connection options (the member is stopped).
  - Run it as root (C(become=true)) - it renames in the dbPath's parent directory and gives the new dbPath to the
    dbPath's owner.
seealso:
  - module: kmipops.psmdb.mongod_conversion_info
  - module: kmipops.psmdb.mongod_kmip_config
  - ref: ansible_collections.kmipops.psmdb.docsite.guide_encrypt_existing
    description: Encrypting existing data with KMIP (the kmip_conversion role and the encrypt_existing_data playbook).
options:
  state:
    description:
      - V(set_aside) - the dbPath renamed aside and an empty one created.
      - V(restored) - the set-aside copy and the saved mongod.conf put back (roll back).
      - V(purged) - the set-aside copies removed, once the dbPath holds KMIP-encrypted data.
    type: str
    choices: [set_aside, restored, purged]
    required: true
  config:
    description: The member's mongod.conf. Its C(storage.dbPath) is used unless O(db_path) is set, and it is saved next
      to the set-aside copy (and restored with it).
    type: path
    default: /etc/mongod.conf
  db_path:
    description: The dbPath, when not the one of O(config).
    type: path
  service_name:
    description: The systemd unit of mongod, which must be inactive for O(state=set_aside) and O(state=restored).
      Empty - only C(mongod.lock) is checked.
    type: str
    default: mongod.service
"""

EXAMPLES = r"""
- name: Set the stopped member's data aside
  kmipops.psmdb.mongod_dbpath:
    state: set_aside
  become: true

- name: Roll the member back (its initial sync failed)
  kmipops.psmdb.mongod_dbpath:
    state: restored
  become: true

- name: Remove the old copies once the whole set runs on KMIP
  kmipops.psmdb.mongod_dbpath:
    state: purged
  become: true
"""

RETURN = r"""
db_path:
  description: The dbPath (symlinks resolved).
  returned: always
  type: str
  sample: /var/lib/mongodb
plan:
  description:
    - What the run does (or would do in check mode). C(action) is C(set_aside), C(already_set_aside) or
      C(nothing_to_set_aside) (an empty dbPath); C(restore) or C(already_restored); for a purge C(remove) lists
      the copies.
  returned: always
  type: dict
set_aside:
  description: The copy made, from its manifest (C(manifest), C(set_aside_path), C(created), C(state), C(present),
    C(data_encryption), C(data_bytes), C(config_backup)).
  returned: when O(state=set_aside) changed something
  type: dict
restored:
  description: The copy put back, from its manifest.
  returned: when O(state=restored) changed something
  type: dict
purged:
  description: The copies removed, from their manifests.
  returned: when O(state=purged) changed something
  type: list
  elements: dict
manifests:
  description: Every manifest of this dbPath after the run, oldest first.
  returned: always
  type: list
  elements: dict
error_kind:
  description:
    - Why the task failed; nothing was changed. C(mongod_running) (the unit is active or C(mongod.lock) is held),
      C(not_same_filesystem) (a mount point), C(no_set_aside_copy) (nothing to restore),
      C(unexpected_db_path) (the dbPath is not what the step expects, for example a purge while the dbPath is not on
      KMIP), C(invalid_option), C(missing_dependency).
  returned: on failure
  type: str
  sample: mongod_running
"""

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO, RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.module import KmipOpsModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.dbpath import SelinuxHooks
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.member import DBPATH_ARGSPEC, DbPathRun


def main() -> None:
    module = KmipOpsModule(argument_spec=DBPATH_ARGSPEC, supports_check_mode=True, dependencies=(PYMONGO, RUAMEL_YAML))
    selinux = SelinuxHooks()
    if module.selinux_enabled():
        selinux = SelinuxHooks(
            get=module.selinux_context,
            set=lambda path, context: module.set_context_if_different(path, context, False),
        )
    run = DbPathRun(
        module.params,
        module.check_mode,
        systemctl=lambda: module.get_bin_path("systemctl", required=True),
        selinux=selinux,
    )
    module.exit_json(**module.run_or_fail(lambda m: run.run()))


if __name__ == "__main__":
    main()
