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
  - Then, with O(wait_for_new_primary=true), waits until another member is PRIMARY, as that new primary sees itself
    (the members are found from C(hello.hosts) of the member, read before the step-down), and returns it as
    RV(new_primary). A step-down whose election takes longer than O(wait_timeout) fails with C(error_kind=timeout)
    (and C(changed=true)).
  - Used by the C(kmipops.psmdb.mongod_member) role (C(stepdown.yml)) before it restarts a primary.
  - With authentication, O(login_user) needs the C(replSetStateChange) privilege (role C(clusterManager)).
author:
  - kmipops.psmdb contributors (@kmipops)
requirements:
  - pymongo >= 4
extends_documentation_fragment:
  - kmipops.psmdb.mongod_connection
  - kmipops.psmdb.wait
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_mongod
attributes:
  check_mode:
    support: full
    details: Reports whether the member would step down; it neither sends the command nor waits.
  diff_mode:
    support: none
options:
  step_down_secs:
    description: How long the member may not become primary again (C(replSetStepDown) C(stepDownSecs)).
    type: int
    default: 60
  secondary_catch_up_period_secs:
    description: How long the primary waits for an electable secondary to catch up before it steps down.
    type: int
    default: 10
  wait_for_new_primary:
    description:
      - After the step-down, wait until another member is the primary (at most O(wait_timeout) seconds).
      - With V(false) the module returns as soon as the member has stepped down; the set may have no primary then.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Step down before restarting the primary
  kmipops.psmdb.mongod_member_stepdown:
    login_port: 27017
    step_down_secs: 120
    wait_timeout: 120
  register: stepdown

- name: Say who took over
  ansible.builtin.debug:
    msg: "{{ stepdown.new_primary }}"
  when: stepdown.was_primary
"""

RETURN = r"""
was_primary:
  description: The member was the primary when the module connected.
  returned: always
  type: bool
new_primary:
  description:
    - The member (C(host:port)) that is primary after the step-down, as it sees itself.
    - Null when the member was not the primary, in check mode, and with O(wait_for_new_primary=false).
  returned: always
  type: str
  sample: db2.example.net:27017
waited_seconds:
  description: How long the module waited for the new primary.
  returned: always
  type: float
  sample: 11.5
last_view:
  description:
    - On C(error_kind=timeout), the replica set at the last poll, with the keys that
      M(kmipops.psmdb.mongod_replset_info) returns.
  returned: on wait timeout
  type: dict
error_kind:
  description:
    - Why the task failed, for playbooks to branch on. The member is C(member).
    - C(unreachable), C(auth_failed) - the member could not be reached or refused the credentials.
    - C(not_replica_set) - the mongod is not a replica set member, so there is nothing to step down.
    - C(command_failed) - C(replSetStepDown) or C(hello) failed, with C(command), C(code) and C(code_name), for
      example when no electable secondary caught up in time.
    - C(timeout) - the member stepped down but no other member became primary within O(wait_timeout), with
      RV(last_view).
    - C(invalid_option) (named in C(option)), C(missing_dependency) (pymongo missing on the host).
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
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.waiter import (
    WAIT_ARGSPEC,
    Waiter,
    WaitTimeoutError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import command
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.info import wait_for_new_primary

ARGUMENT_SPEC: dict[str, Any] = {
    "step_down_secs": {"type": "int", "default": 60},
    "secondary_catch_up_period_secs": {"type": "int", "default": 10},
    "wait_for_new_primary": {"type": "bool", "default": True},
    **WAIT_ARGSPEC,
}


def run(module: MongodMemberModule) -> dict[str, Any]:
    params, member = module.params, module.member
    if params["secondary_catch_up_period_secs"] >= params["step_down_secs"]:
        raise InvalidOptionError(
            "step_down_secs", "must be greater than secondary_catch_up_period_secs (mongod refuses it)"
        )
    waiter = Waiter.from_params(params)  # wait_timeout and wait_sleep checked before anything is done
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
    result: dict[str, Any] = {"changed": was_primary, "was_primary": was_primary, "new_primary": None}
    if not (was_primary and params["wait_for_new_primary"]) or module.check_mode:
        return {**result, "waited_seconds": 0.0}
    seeds = [h for h in [*hello.get("hosts", []), *hello.get("passives", [])] if h != hello.get("me")]
    try:
        waited = wait_for_new_primary(params, hello.get("me") or member, seeds, waiter)
    except WaitTimeoutError as error:
        module.fail_from(error, **result)
    return {**result, "new_primary": waited.value.view.primary, "waited_seconds": round(waited.waited_s, 3)}


def main() -> None:
    module = MongodMemberModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**module.run_or_fail(run))


if __name__ == "__main__":
    main()
