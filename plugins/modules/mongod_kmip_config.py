#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_kmip_config
short_description: Write the KMIP encryption settings into an existing mongod.conf
version_added: 0.1.0
description:
  - Manages C(security.enableEncryption), C(security.encryptionCipherMode) and C(security.kmip.*) of
    Percona Server for MongoDB in an existing mongod.conf, and leaves every other byte of the file as it
    was (other keys, their order, comments, flow style, anchors, Windows line endings).
  - Only the options that are set are written; mongod's defaults are not spelled out. C(security.kmip)
    becomes exactly the options given, so a key removed from the task is removed from the file.
  - Everything is validated before the file is touched, including what mongod itself would refuse at
    start and what it would do to data already in the dbPath (see O(db_path)).
  - C(security.kmip.rotateMasterKey) is never kept. A rotation is a one-shot mongod run that rotates and
    exits; left in the file it would rotate again on every start. When the file has it, the module
    removes it and says so in a warning.
  - The module never restarts mongod; RV(restart_required) tells the caller that the running mongod does
    not use the new settings yet.
  - Uses the same model and rendering as the P(kmipops.psmdb.kmip_security#filter) filter, so both
    produce identical YAML.
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - ruamel.yaml
  - pymongo (its C(bson) package, to read C(storage.bson))
  - cryptography (when O(check_files=true))
extends_documentation_fragment:
  - kmipops.psmdb.kmip
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_kmip
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the security section before and after, with the password masked.
options:
  path:
    description: The mongod configuration file. It must exist.
    type: path
    default: /etc/mongod.conf
  state:
    description:
      - V(present) turns encryption on with KMIP and writes the options.
      - V(absent) removes C(enableEncryption), C(encryptionCipherMode) and C(kmip) from C(security) and keeps
        the other security keys. Refused when the data in the dbPath is encrypted.
    type: str
    choices: [present, absent]
    default: present
  key_identifier:
    description:
      - Id of the master key on the KMIP server (C(security.kmip.keyIdentifier)).
      - When not set, mongod registers a new key on first start, and uses the id stored in C(storage.bson)
        after that.
      - On a node whose data is already encrypted, a different id than the one in C(storage.bson) is
        refused, because that is a master key rotation, not a configuration change.
    type: str
  activate_keys:
    description:
      - C(security.kmip.activateKeys). When not set, mongod's default (V(true)) applies.
    type: bool
  key_state_polling_seconds:
    description:
      - C(security.kmip.keyStatePollingSeconds). When not set, mongod's default (900) applies. 0 or less
        disables polling. -2147483648 to 2147483647 (mongod reads a 32-bit int).
    type: int
  cipher_mode:
    description:
      - C(security.encryptionCipherMode). When not set, mongod's default C(AES256-CBC) applies.
      - The cipher mode of data that is already encrypted cannot change; such a change is refused.
    type: str
    choices: [AES256-CBC, AES256-GCM]
  backup:
    description: Keep a copy of the original file (next to it, with a time stamp) before changing it.
    type: bool
    default: false
  service_user:
    description:
      - The user mongod runs as. The TLS files are checked for readability with this user's uid and groups
        (every directory on the path and the file, by their POSIX access ACL where they have one, else by
        their mode bits), and the file is owned by it by default.
    type: str
    default: mongod
  owner:
    description:
      - Owner of the written file. Defaults to O(service_user), because a file that holds the client
        certificate password is mode 0600 and mongod must still read it.
    type: str
  group:
    description: Group of the written file. When not set, it is left as it is.
    type: str
  mode:
    description:
      - Octal mode of the written file, for example V('0640').
      - When the file holds O(client_certificate_password) it defaults to V('0600'), and a mode that gives
        the group or others any access is refused. Otherwise the mode is left as it is.
    type: raw
  db_path:
    description:
      - The dbPath whose C(storage.bson) and WiredTiger files are checked. Defaults to C(storage.dbPath) of
        the file, else mongod's built-in default C(/data/db) (the Percona packages set
        C(/var/lib/mongodb) or C(/var/lib/mongo) in their mongod.conf).
      - A missing directory means a new node.
    type: path
  check_files:
    description:
      - Check O(server_ca_file) and O(client_certificate_file) on the host, as O(service_user) would read
        them, and that the PEM holds a private key and its certificate, opened by
        O(client_certificate_password).
      - Turn off only when the files are put in place later in the same play.
    type: bool
    default: true
  replace_key_management:
    description:
      - Replace another key management with KMIP - C(security.encryptionKeyFile) (a local key file) and
        C(security.vault) are removed from the file instead of refused.
      - Allowed only while the dbPath is missing or empty, that is on a member about to be rebuilt by initial sync
        (after M(kmipops.psmdb.mongod_dbpath) set its data aside). With any file in the dbPath the task is refused as
        without this option - PSMDB cannot switch existing data to KMIP in place.
      - Used by the P(kmipops.psmdb.kmip_conversion#role) role. Each removed key is named in RV(notes) and warned.
    type: bool
    default: false
notes:
  - O(server_name), O(client_certificate_file) are required with O(state=present).
seealso:
  - plugin: kmipops.psmdb.kmip_security
    plugin_type: filter
  - module: kmipops.psmdb.kmip_server_info
"""

EXAMPLES = r"""
- name: Encrypt with KMIP, key registered by mongod on first start
  kmipops.psmdb.mongod_kmip_config:
    server_name: [kmip1.example.com, kmip2.example.com]
    server_ca_file: /etc/mongodb/kmip-ca.pem
    client_certificate_file: /etc/mongodb/kmip-client.pem
    connect_retries: 2
  register: kmip_conf

- name: Pin a pre-created key, GCM, encrypted private key
  kmipops.psmdb.mongod_kmip_config:
    path: /etc/mongod.conf
    server_name: [kmip1.example.com]
    server_ca_file: /etc/mongodb/kmip-ca.pem
    client_certificate_file: /etc/mongodb/kmip-client.pem
    client_certificate_password: "{{ vault_kmip_pem_password }}"
    key_identifier: "{{ kmip_key.key_identifier }}"
    cipher_mode: AES256-GCM
    backup: true

- name: Key file -> KMIP on a member whose dbPath was set aside (empty), before its initial sync
  kmipops.psmdb.mongod_kmip_config:
    server_name: [kmip1.example.com]
    server_ca_file: /etc/mongodb/kmip-ca.pem
    client_certificate_file: /etc/mongodb/kmip-client.pem
    replace_key_management: true

- name: Remove the KMIP settings (only on a node without encrypted data)
  kmipops.psmdb.mongod_kmip_config:
    state: absent
"""

RETURN = r"""
path:
  description: The file that was managed.
  returned: always
  type: str
  sample: /etc/mongod.conf
security:
  description: The security mapping after the change, password masked.
  returned: always
  type: dict
  sample: {"enableEncryption": true, "kmip": {"serverName": "kmip1,kmip2", "clientCertificateFile": "/etc/c.pem"}}
restart_required:
  description: The file content changed, so the running mongod does not use it until restarted.
  returned: always
  type: bool
backup_file:
  description: The copy of the original file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/mongod.conf.1234.2026-11-27@23:59:59~
db_path:
  description: The dbPath that was inspected.
  returned: always
  type: str
  sample: /var/lib/mongodb
data_encryption:
  description: What the dbPath holds. V(kmip), V(vault), V(keyfile), V(unencrypted) or V(none) (empty or absent).
  returned: always
  type: str
data_key_identifier:
  description: The KMIP master key id recorded in C(storage.bson), if any.
  returned: always
  type: str
notes:
  description: What the module changed beyond the options, such as a removed C(rotateMasterKey).
  returned: always
  type: list
  elements: str
error_kind:
  description:
    - Why the task failed, for playbooks to branch on - C(invalid_option) (an option, the file or the data in the
      dbPath that mongod would refuse, named in C(option); nothing was changed), C(missing_dependency) (a Python
      library missing on the host).
    - C(write_failed) - the file could not be written (immutable, read-only directory or file system, full disk),
      named in C(path) with the cause; the file was left unchanged.
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: invalid_option
"""

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import (
    CRYPTOGRAPHY,
    PYMONGO,
    RUAMEL_YAML,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.module import KmipModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf_update import (
    CONFIG_ARGSPEC,
    ConfigRun,
)


def main() -> None:
    module = KmipModule(argument_spec=CONFIG_ARGSPEC, supports_check_mode=True, dependencies=(RUAMEL_YAML, PYMONGO))
    if module.params["check_files"] and module.params["state"] == "present":
        module.require(CRYPTOGRAPHY)
    result = module.run_or_fail(lambda m: ConfigRun(m).run(), path=module.params["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
