#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kmip_key_info
short_description: Read the attributes of keys on a KMIP server
version_added: "0.1.0"
description:
  - Returns the KMIP attributes of keys given by unique identifier and/or by Name, as the identity of
    O(client_certificate_file) sees them (identifier, names, object type, algorithm, length, state,
    activation and deactivation dates when the server keeps them, and usage mask).
  - One Get Attributes per key (and one Locate per name) in a single TLS session. Key material is never
    read.
  - Keys that do not exist (or that this identity may not see) are listed in RV(not_found); the task does
    not fail for them.
author:
  - kmipops.psmdb contributors (@kmipops)
extends_documentation_fragment:
  - kmipops.psmdb.kmip
  - kmipops.psmdb.kmip.session
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_kmip
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
options:
  key_identifiers:
    description:
      - KMIP unique identifiers of the keys.
    type: list
    elements: str
  names:
    description:
      - KMIP Name attributes; every object with the name is returned (Locate by Name).
    type: list
    elements: str
seealso:
  - module: kmipops.psmdb.kmip_key
  - module: kmipops.psmdb.kmip_server_info
"""

EXAMPLES = r"""
- name: Show the master key mongod is configured with, as mongod's identity sees it
  kmipops.psmdb.kmip_key_info:
    key_identifiers: ["{{ current_key_id }}"]
    names: [psmdb-rs0-master]
    server_name: [kmip1.example.com]
    server_ca_file: /etc/mongod/kmip-ca.pem
    client_certificate_file: /etc/mongod/kmip-client.pem
  register: keys

- name: Prove to the auditor that the key is an Active AES-256 key
  ansible.builtin.assert:
    that:
      - keys.keys[0].state == 'Active'
      - keys.keys[0].algorithm == 'AES'
      - keys.keys[0].length == 256
"""

RETURN = r"""
keys:
  description: One entry per key found, identifiers first, then each name's matches (no duplicates).
  returned: always
  type: list
  elements: dict
  contains:
    key_identifier:
      description: KMIP unique identifier.
      type: str
      sample: "42"
    name:
      description: First KMIP Name, or null.
      type: str
      sample: psmdb-rs0-master
    names:
      description: All KMIP Names.
      type: list
      elements: str
    object_type:
      description: KMIP object type.
      type: str
      sample: Symmetric Key
    algorithm:
      description: Cryptographic algorithm.
      type: str
      sample: AES
    length:
      description: Cryptographic length in bits.
      type: int
      sample: 256
    state:
      description: KMIP state (Pre-Active, Active, Deactivated, Compromised, Destroyed...).
      type: str
      sample: Active
    usage_mask:
      description: Cryptographic usage mask, as names.
      type: list
      elements: str
      sample: [Encrypt, Decrypt]
    initial_date:
      description: Initial Date, when the key was created or registered (ISO 8601, UTC), when the server returns it.
      type: str
    activation_date:
      description: Activation date (ISO 8601, UTC) when the server returns it.
      type: str
    deactivation_date:
      description: Deactivation date (ISO 8601, UTC) when the server returns it.
      type: str
    usable_by_mongod:
      description: Whether the attributes fit a PSMDB master key (AES-256 symmetric key, Active).
      type: bool
not_found:
  description: The requested identifiers and names that matched nothing visible to this identity.
  returned: always
  type: list
  elements: dict
  sample: [{"key_identifier": "99"}, {"name": "old-key"}]
server:
  description: The KMIP server used (host:port).
  returned: always
  type: str
error_kind:
  description:
    - Why the task failed, for playbooks to branch on - the kinds of RV(kmipops.psmdb.kmip_key#module:error_kind)
      but the key kinds (a key that does not exist is listed in RV(not_found), not a failure), for example
      C(invalid_option), C(missing_dependency), C(all_servers_failed), C(permission_denied).
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: all_servers_failed
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipItemNotFoundError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import keys as kmip_keys
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KmipClient, KmipSession
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.module import KmipSessionModule

ARGUMENT_SPEC: dict[str, Any] = {
    "key_identifiers": {"type": "list", "elements": "str", "no_log": False},
    "names": {"type": "list", "elements": "str"},
}


def read_keys(session: KmipSession, uids: list[str], names: list[str]) -> tuple[list[dict[str, Any]], list[dict]]:
    """Attributes of every requested key, and what was not found."""
    found: dict[str, kmip_keys.KeyAttributes] = {}
    not_found: list[dict[str, str]] = []
    wanted: list[str] = []
    for uid in uids:
        wanted.append(uid)
    for name in names:
        located = session.locate_by_name(name)
        if not located:
            not_found.append({"name": name})
        wanted.extend(located)
    for uid in wanted:
        if uid in found:
            continue
        try:
            found[uid] = kmip_keys.read_key(session, uid)
        except KmipItemNotFoundError:
            not_found.append({"key_identifier": uid})
    keys = []
    for key in found.values():
        entry = key.as_result()
        entry["usable_by_mongod"] = key.master_key_problem() is None and key.state == kmip_keys.ACTIVE
        keys.append(entry)
    return keys, not_found


def run(module: KmipSessionModule) -> dict[str, Any]:
    uids, names = module.params["key_identifiers"] or [], module.params["names"] or []
    for option, values in (("key_identifiers", uids), ("names", names)):
        if any(not value.strip() for value in values):
            raise InvalidOptionError(option, "entries must not be empty")
    client = KmipClient(module.kmip_settings(), module.params["kmip_version"])
    # The reads are the session's first exchanges, so a server that stalls is skipped as mongod would.
    session, (keys, not_found) = client.session(lambda s: read_keys(s, uids, names))
    session.close()
    return {"changed": False, "keys": keys, "not_found": not_found, "server": session.server}


def main() -> None:
    module = KmipSessionModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_one_of=[("key_identifiers", "names")],
    )
    result = module.run_or_fail(run)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
