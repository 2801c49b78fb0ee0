#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kmip_key
short_description: Ensure a PSMDB master key exists, is deactivated, or is gone on a KMIP server
version_added: "0.1.0"
description:
  - Manages the lifecycle of a Percona Server for MongoDB master encryption key on any KMIP server.
  - With O(state=present) it finds the key by O(key_identifier) or by KMIP O(name) (Locate by Name) and
    checks that mongod can use it (256-bit AES symmetric key, Active). When no key has that name, it
    registers one the way PSMDB does (a 256-bit AES key generated on the managed host from the OS's
    random source, usage mask Encrypt|Decrypt), with the Name attribute set, and activates it.
  - A Pre-Active key is activated. A key that left the Active state (Deactivated, Compromised) is an
    error, because KMIP cannot activate it again and mongod would refuse to start with it.
  - With O(state=deactivated) the key is revoked with reason "cessation of operation", so it becomes
    Deactivated; mongod can still read it during a master key rotation, but not start with it.
  - With O(state=absent) the key is revoked (if Active) and destroyed. An Active key is only destroyed
    with O(force=true), because data encrypted with it becomes unreadable.
  - Key material never leaves the module. It is not returned, logged or shown in diffs.
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
    details: Reads the key (Locate, Get Attributes) and predicts the change without registering, activating,
      revoking or destroying anything.
  diff_mode:
    support: full
    details: Shows the key identifier, name and state before and after; never key material.
options:
  key_identifier:
    description:
      - KMIP unique identifier of the key (mongod's C(security.kmip.keyIdentifier)).
      - Takes precedence over O(name) to find the key. A key cannot be registered under a chosen identifier
        (the server assigns it), so with O(state=present) an unknown O(key_identifier) is an error.
    type: str
  name:
    description:
      - KMIP Name attribute of the key. Used to find the key (Locate by Name) and to name a newly registered
        key. More than one object with this name is an error.
    type: str
  state:
    description:
      - V(present) ensures an Active AES-256 key, registering one if no key has O(name).
      - V(deactivated) revokes the key (cessation of operation).
      - V(absent) revokes and destroys it.
    type: str
    choices: [present, deactivated, absent]
    default: present
  force:
    description:
      - Allow O(state=absent) to destroy an Active key.
    type: bool
    default: false
seealso:
  - module: kmipops.psmdb.kmip_key_info
  - module: kmipops.psmdb.kmip_server_info
"""

EXAMPLES = r"""
- name: Ensure the master key of replica set rs0 exists and is Active (on the mongod host, with its identity)
  kmipops.psmdb.kmip_key:
    name: psmdb-rs0-master
    server_name: [kmip1.example.com, kmip2.example.com]
    server_ca_file: /etc/mongod/kmip-ca.pem
    client_certificate_file: /etc/mongod/kmip-client.pem
    client_certificate_password: "{{ vault_kmip_client_password }}"
  register: master_key
  delegate_to: "{{ inventory_hostname }}"
  vars:
    ansible_python_interpreter: "{{ kmipops_python_interpreter }}"

- name: Use it in mongod.conf
  kmipops.psmdb.mongod_kmip_config:
    key_identifier: "{{ master_key.key_identifier }}"

- name: Retire the old key after rotation (it stays readable for old backups)
  kmipops.psmdb.kmip_key:
    key_identifier: "{{ old_key_id }}"
    state: deactivated

- name: Destroy a test key even though it is Active
  kmipops.psmdb.kmip_key:
    name: scratch-key
    state: absent
    force: true
"""

RETURN = r"""
key_identifier:
  description: KMIP unique identifier of the key; null when no key exists (or in check mode before registering).
  returned: always
  type: str
  sample: "42"
name:
  description: The key's first KMIP Name, or O(name).
  returned: always
  type: str
  sample: psmdb-rs0-master
state:
  description: KMIP state after the task (predicted in check mode); C(Destroyed) once removed, null when none.
  returned: always
  type: str
  sample: Active
algorithm:
  description: Cryptographic algorithm of the key.
  returned: when a key exists
  type: str
  sample: AES
length:
  description: Cryptographic length in bits.
  returned: when a key exists
  type: int
  sample: 256
server:
  description: The KMIP server used (host:port), the first one mongod would use.
  returned: always
  type: str
  sample: kmip1.example.com:5696
operations:
  description: KMIP operations sent, in order (reads included).
  returned: always
  type: list
  elements: str
  sample: [Locate, Get Attributes]
error_kind:
  description:
    - Why the task failed, for playbooks to branch on.
    - C(invalid_option) - an option that mongod or the module refuses, named in C(option); nothing was sent.
    - C(missing_dependency) - a Python library is missing on the host.
    - C(all_servers_failed) - no server of O(server_name) could be used; C(attempts) lists each attempt with its
      own kind (C(dns), C(connection_refused), C(timeout), C(network), C(tls_verify), C(tls_rejected),
      C(not_kmip), C(kmip_protocol)).
    - C(permission_denied), C(not_found), C(not_supported), C(kmip_operation) - the server answered a KMIP
      operation with a failure (C(operation), C(kmip_reason), C(server)).
    - C(wrong_key_type), C(wrong_key_state) - the key cannot be used as a PSMDB master key.
    - C(ambiguous_name) - several keys have O(name).
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: permission_denied
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipItemNotFoundError,
    KmipKeyStateError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import keys as kmip_keys
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KmipClient
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.module import KmipSessionModule

ARGUMENT_SPEC: dict[str, Any] = {
    "key_identifier": {"type": "str"},
    "name": {"type": "str"},
    "state": {"type": "str", "choices": ["present", "deactivated", "absent"], "default": "present"},
    "force": {"type": "bool", "default": False},
}


def _snapshot(key: Any) -> dict[str, Any]:
    if key is None:
        return {}
    return {"key_identifier": key.key_identifier, "name": key.names[0] if key.names else None, "state": key.state}


def _not_found(server: str, key_identifier: str | None, name: str | None) -> KmipItemNotFoundError:
    what = f"key_identifier {key_identifier}" if key_identifier else f"name {name!r}"
    return KmipItemNotFoundError(
        server,
        "Get Attributes" if key_identifier else "Locate",
        "Item Not Found",
        f"no key with {what}",
        advice=(
            "The server assigns identifiers: give name to register a new key, or check that the key was "
            "registered with this client certificate"
        ),
    )


def run(module: KmipSessionModule) -> dict[str, Any]:
    params = module.params
    key_identifier, name, state = params["key_identifier"], params["name"], params["state"]
    for option in ("key_identifier", "name"):
        if params[option] is not None and not params[option].strip():
            raise InvalidOptionError(option, "must not be empty")
    client = KmipClient(module.kmip_settings(), params["kmip_version"])
    session, key = client.session(lambda s: kmip_keys.find_key(s, key_identifier, name))
    try:
        server = session.server
        before = _snapshot(key)
        after = dict(before)
        changed = False
        if state == "present":
            if key is None:
                if key_identifier:
                    raise _not_found(server, key_identifier, None)
                changed = True
                after = {"key_identifier": None, "name": name, "state": kmip_keys.ACTIVE}
                if not module.check_mode:
                    uid = session.register_master_key(name)
                    session.activate(uid)
                    after["key_identifier"] = uid
                algorithm, length = "AES", 256
            else:
                kmip_keys.require_master_key_type(server, key)
                if kmip_keys.ensure_usable_state(server, key):
                    changed = True
                    if not module.check_mode:
                        session.activate(key.key_identifier)
                after["state"] = kmip_keys.ACTIVE
                algorithm, length = key.algorithm, key.length
        else:
            if key is None:
                if state == "deactivated":
                    raise _not_found(server, key_identifier, name)
                algorithm = length = None
            else:
                algorithm, length = key.algorithm, key.length
                active = key.state == kmip_keys.ACTIVE
                if state == "deactivated":
                    if key.state in (kmip_keys.ACTIVE, kmip_keys.PRE_ACTIVE):
                        changed = True
                        if not module.check_mode:
                            session.revoke(key.key_identifier)
                        after["state"] = kmip_keys.DEACTIVATED
                else:
                    if active and not params["force"]:
                        raise KmipKeyStateError(
                            server,
                            key.key_identifier,
                            "the key is Active; destroying it makes data encrypted with it unreadable",
                            "Set force: true to destroy it, or use state: deactivated",
                        )
                    changed = True
                    if not module.check_mode:
                        if active:
                            session.revoke(key.key_identifier)
                        session.destroy(key.key_identifier)
                    after["state"] = "Destroyed"
        result: dict[str, Any] = {
            "changed": changed,
            "key_identifier": after.get("key_identifier", key_identifier),
            "name": after.get("name") or name,
            "state": after.get("state"),
            "server": server,
            "operations": list(session.operations),
        }
        if algorithm is not None:
            result.update(algorithm=algorithm, length=length)
        if module._diff:
            result["diff"] = {"before": before, "after": after}
        return result
    finally:
        session.close()


def main() -> None:
    module = KmipSessionModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_one_of=[("key_identifier", "name")],
    )
    result = module.run_or_fail(run)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
