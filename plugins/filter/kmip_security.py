# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kmip_security
short_description: Render the security section of mongod.conf with KMIP encryption
version_added: 0.1.0
description:
  - Takes the options of M(kmipops.psmdb.mongod_kmip_config) as a dictionary, validates them exactly as the
    module does (types, ranges, server names, cipher mode), and returns the C(security) mapping of
    mongod.conf, or the C(security:) block as YAML text.
  - For operators who template their whole mongod.conf with Jinja2. The module and the filter share one
    model and one renderer, so for the same options (and the same other security keys) they produce the
    same bytes.
  - Runs on the controller, so it does not check files on the hosts, nor the dbPath; use
    M(kmipops.psmdb.kmip_server_info) for that.
author:
  - kmipops.psmdb contributors (@kmipops)
options:
  _input:
    description:
      - The options, named as in M(kmipops.psmdb.mongod_kmip_config) (V(server_name), V(port),
        V(server_ca_file), V(client_certificate_file), V(client_certificate_password), V(key_identifier),
        V(connect_retries), V(connect_timeout_ms), V(activate_keys), V(key_state_polling_seconds),
        V(cipher_mode)). Unset or null options are not written. Unknown names are an error.
    type: dict
    required: true
  security:
    description:
      - The other keys of the C(security) mapping (such as C(authorization) or C(keyFile)). They are kept,
        in their order, and the encryption keys are set after them. C(encryptionKeyFile) or C(vault) here
        is an error, as PSMDB refuses them together with KMIP.
    type: dict
    default: {}
  output:
    description:
      - V(mapping) returns the C(security) mapping (to merge into a data structure you dump yourself).
      - V(yaml) returns the C(security:) block as text, exactly as M(kmipops.psmdb.mongod_kmip_config)
        writes it.
    type: str
    choices: [mapping, yaml]
    default: mapping
  indent:
    description: Indentation of the YAML text, 1 to 10 spaces.
    type: int
    default: 2
requirements:
  - ruamel.yaml on the controller (for O(output=yaml))
notes:
  - The rendered text holds C(client_certificate_password) when it is set. Template it with
    C(no_log) and a file mode of 0600 owned by the mongod user.
"""

EXAMPLES = r"""
# templates/mongod.conf.j2 -- the whole file is yours, the security block comes from the filter
# storage:
#   dbPath: /var/lib/mongodb
# net:
#   port: 27017
# {{ kmip_options | kmipops.psmdb.kmip_security(security={'authorization': 'enabled'}, output='yaml') }}

- name: Options as a dict, the same names as the module
  ansible.builtin.set_fact:
    kmip_options:
      server_name: [kmip1.example.com, kmip2.example.com]
      server_ca_file: /etc/mongodb/kmip-ca.pem
      client_certificate_file: /etc/mongodb/kmip-client.pem
      connect_retries: 2
      cipher_mode: AES256-GCM

- name: Merge the mapping into a whole configuration you dump yourself
  ansible.builtin.copy:
    dest: /etc/mongod.conf
    content: "{{ mongod_conf | combine({'security': kmip_options | kmipops.psmdb.kmip_security}) | to_nice_yaml }}"
    owner: mongod
    mode: "0600"
"""

RETURN = r"""
_value:
  description:
    - With O(output=mapping), the C(security) mapping as a dict, the other keys first, then
      C(enableEncryption), C(encryptionCipherMode) (when set) and C(kmip).
    - With O(output=yaml), the C(security) block as text, ending with a newline.
  type: raw
"""

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import KmipOpsError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import (
    KmipEncryptionConfig,
    render_security_yaml,
    to_commented,
    to_plain,
)

OUTPUTS = ("mapping", "yaml")
#: spaces per YAML level of output=yaml: mongod.conf files use 2 or 4
INDENT_MIN = 1
INDENT_MAX = 10


def kmip_security(
    options: Mapping[str, Any],
    security: Mapping[str, Any] | None = None,
    output: str = "mapping",
    indent: int = 2,
) -> Any:
    if not isinstance(options, Mapping):
        raise AnsibleFilterError(f"kmip_security: the input must be a dict of options, got {type(options).__name__}")
    if security is not None and not isinstance(security, Mapping):
        raise AnsibleFilterError("kmip_security: security must be a dict (the other keys of the security mapping)")
    if isinstance(indent, bool) or not isinstance(indent, int) or not INDENT_MIN <= indent <= INDENT_MAX:
        raise AnsibleFilterError(
            f"kmip_security: option indent: must be an integer from {INDENT_MIN} to {INDENT_MAX} (spaces per YAML "
            f"level), got {indent!r}"
            if isinstance(indent, (int, float))
            else f"kmip_security: option indent: must be an integer from {INDENT_MIN} to {INDENT_MAX} (spaces per YAML "
            f"level), got {type(indent).__name__}"
        )
    if output not in OUTPUTS:
        raise AnsibleFilterError(f"kmip_security: output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    try:
        # plain types first: Ansible hands filters tagged str/dict subclasses the YAML dumper does not know
        config = KmipEncryptionConfig.from_options(to_plain(dict(options)))
        result = to_commented(to_plain(dict(security or {})))
        config.apply_to(result)
    except KmipOpsError as error:
        raise AnsibleFilterError(f"kmip_security: {error}") from None
    if output == "mapping":
        return to_plain(result)
    if not RUAMEL_YAML.found:
        raise AnsibleFilterError("kmip_security: output=yaml needs the Python library ruamel.yaml on the controller")
    return render_security_yaml(result, indent=indent)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kmip_security": kmip_security}
