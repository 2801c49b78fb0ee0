#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_member_stepdown
short_description: Make the local mongod step down if it is the primary
version_added: 0.1.0
description:
  - Sends C(replSetStepDown) to one mongod (direct connection) when it is the primary, so that an
    electable secondary that has caught up takes over before the member is restarted.
  - Does nothing (C(changed=false)) when the member is not the primary.
  - Used by the C(kmipops.psmdb.mongod_member) role (C(stepdown.yml)) before it restarts a primary.
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the member would step down and does not send the command.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  host:
    description: Address of the member.
    type: str
    default: localhost
  port:
    description: Port of the member.
    type: int
    default: 27017
  username:
    description: User with the C(replSetStateChange) privilege (C(clusterManager)). No authentication when not set.
    type: str
  password:
    description: Password of O(username). Never shown.
    type: str
  auth_source:
    description: Database of O(username).
    type: str
    default: admin
  tls:
    description: Connect with TLS. Implied by O(tls_ca_file) or O(tls_certificate_key_file).
    type: bool
    default: false
  tls_ca_file:
    description: CA certificates that sign the member's certificate.
    type: path
  tls_certificate_key_file:
    description: Client certificate and key (one PEM).
    type: path
  tls_certificate_key_file_password:
    description: Password of the key in O(tls_certificate_key_file).
    type: str
  tls_allow_invalid_hostnames:
    description: Do not check the member's certificate against O(host).
    type: bool
    default: false
  timeout_ms:
    description: Time limit in milliseconds to reach the member.
    type: int
    default: 5000
  step_down_secs:
    description: How long the member may not become primary again (C(replSetStepDown) C(stepDownSecs)).
    type: int
    default: 60
  secondary_catch_up_period_secs:
    description: How long the primary waits for an electable secondary to catch up before it steps down.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Step down before restarting the primary
  kmipops.psmdb.mongod_member_stepdown:
    port: 27017
    step_down_secs: 120
"""

RETURN = r"""
was_primary:
  description: The member was the primary when the module connected.
  returned: always
  type: bool
"""

import contextlib  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.kmipops.psmdb.plugins.module_utils.mongod_member import (  # noqa: E402
    HAS_PYMONGO,
    MEMBER_CONNECTION_ARGSPEC,
    PYMONGO_IMPORT_ERROR,
    ConnectionFailure,
    PyMongoError,
    connect,
)


def main() -> None:
    spec = {
        **MEMBER_CONNECTION_ARGSPEC,
        "step_down_secs": {"type": "int", "default": 60},
        "secondary_catch_up_period_secs": {"type": "int", "default": 10},
    }
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_PYMONGO:
        module.fail_json(msg=missing_required_lib("pymongo"), exception=PYMONGO_IMPORT_ERROR)
    if module.params["secondary_catch_up_period_secs"] >= module.params["step_down_secs"]:
        module.fail_json(msg="step_down_secs: must be greater than secondary_catch_up_period_secs (mongod refuses it)")
    where = f"{module.params['host']}:{module.params['port']}"
    client = connect(module.params)
    try:
        was_primary = bool(client.admin.command("hello").get("isWritablePrimary"))
        if was_primary and not module.check_mode:
            # older servers close connections on step-down: that is success
            with contextlib.suppress(ConnectionFailure):
                client.admin.command(
                    "replSetStepDown",
                    module.params["step_down_secs"],
                    secondaryCatchUpPeriodSecs=module.params["secondary_catch_up_period_secs"],
                )
    except PyMongoError as exc:
        module.fail_json(msg=f"replSetStepDown on {where} failed: {exc}")
    finally:
        client.close()
    module.exit_json(changed=was_primary, was_primary=was_primary)


if __name__ == "__main__":
    main()
