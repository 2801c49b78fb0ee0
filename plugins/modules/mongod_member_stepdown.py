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
  - With authentication, O(username) needs the C(replSetStateChange) privilege (role C(clusterManager)).
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - kmipops.psmdb.mongod_connection
attributes:
  check_mode:
    support: full
    details: Reports whether the member would step down and does not send the command.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
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

from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import (  # noqa: E402
    HAS_PYMONGO,
    MEMBER_CONNECTION_ARGSPEC,
    PYMONGO_IMPORT_ERROR,
    ConnectionFailure,
    PyMongoError,
    connect,
    connection_warnings,
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
    for warning in connection_warnings(module.params):
        module.warn(warning)
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
