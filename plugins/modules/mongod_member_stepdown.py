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
  - With authentication, O(login_user) needs the C(replSetStateChange) privilege (role C(clusterManager)).
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4
extends_documentation_fragment:
  - kmipops.psmdb.mongod_connection
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_mongod
attributes:
  check_mode:
    support: full
    details: Reports whether the member would step down and does not send the command.
  diff_mode:
    support: none
options:
  step_down_secs:
    description: How long the member may not become primary again (C(replSetStepDown) C(stepDownSecs)). 1 to
      2147483647, and more than O(secondary_catch_up_period_secs).
    type: int
    default: 60
  secondary_catch_up_period_secs:
    description: How long the primary waits for an electable secondary to catch up before it steps down. 0 to
      2147483647.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Step down before restarting the primary
  kmipops.psmdb.mongod_member_stepdown:
    login_port: 27017
    step_down_secs: 120
"""

RETURN = r"""
was_primary:
  description: The member was the primary when the module connected.
  returned: always
  type: bool
error_kind:
  description:
    - Why the task failed, for playbooks to branch on. The member is C(member).
    - C(unreachable), C(auth_failed) - the member could not be reached or refused the credentials.
    - C(not_replica_set) - the mongod is not a replica set member, so there is nothing to step down.
    - C(command_failed) - C(replSetStepDown) or C(hello) failed, with C(command), C(code) and C(code_name), for
      example when no electable secondary caught up in time.
    - C(invalid_option) (named in C(option)), C(missing_dependency) (pymongo missing on the host).
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: command_failed
"""

import contextlib
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    MongodNotReplicaSetError,
    MongodUnreachableError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import INT32_MAX, IntBound
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import command
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule

ARGUMENT_SPEC: dict[str, Any] = {
    "step_down_secs": {"type": "int", "default": 60},
    "secondary_catch_up_period_secs": {"type": "int", "default": 10},
}


#: mongod's replSetStepDown takes both as numbers of seconds; stepDownSecs must exceed the catch-up period
BOUNDS: dict[str, IntBound] = {
    "step_down_secs": IntBound(1, INT32_MAX, "seconds"),
    "secondary_catch_up_period_secs": IntBound(0, INT32_MAX, "seconds"),
}


def run(module: MongodMemberModule) -> dict[str, Any]:
    params, member = module.params, module.member
    if params["secondary_catch_up_period_secs"] >= params["step_down_secs"]:
        raise InvalidOptionError(
            "step_down_secs", "must be greater than secondary_catch_up_period_secs (mongod refuses it)"
        )
    client = module.connect()
    try:
        hello = command(client, member, "hello")
        if not hello.get("setName"):
            # a standalone calls itself a writable primary; replSetStepDown would only be refused
            raise MongodNotReplicaSetError(member, "hello names no replica set, so there is no primary to step down")
        was_primary = bool(hello.get("isWritablePrimary"))
        if was_primary and not module.check_mode:
            # mongod closes client connections when it steps down: that is success
            with contextlib.suppress(MongodUnreachableError):
                command(
                    client,
                    member,
                    "replSetStepDown",
                    params["step_down_secs"],
                    secondaryCatchUpPeriodSecs=params["secondary_catch_up_period_secs"],
                )
    finally:
        client.close()
    return {"changed": was_primary, "was_primary": was_primary}


def main() -> None:
    module = MongodMemberModule(argument_spec=ARGUMENT_SPEC, bounds=BOUNDS, supports_check_mode=True)
    module.exit_json(**module.run_or_fail(run))


if __name__ == "__main__":
    main()
