#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_member_info
short_description: State of the local mongod replica-set member, read-only
version_added: 0.1.0
description:
  - Connects to one mongod (direct connection, no replica-set discovery) with pymongo and returns its
    replica-set state, the members as it sees them, and whether a majority is healthy.
  - Read-only. Meant to be polled with C(until) after a restart, so an unreachable member is a result
    (RV(reachable=false)), not a failure, unless O(fail_on_unreachable=true). Wrong credentials always fail.
  - With authentication, O(login_user) needs C(replSetGetStatus) and C(serverStatus) (role C(clusterMonitor));
    without C(serverStatus) the process fields (RV(pid), RV(process_host), RV(uptime_seconds)) are null.
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
  diff_mode:
    support: none
options:
  fail_on_unreachable:
    description: Fail when the member cannot be reached, instead of returning RV(reachable=false).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Wait until the restarted member is PRIMARY or SECONDARY again
  kmipops.psmdb.mongod_member_info:
    login_port: 27017
    tls_ca_file: /etc/mongodb/tls/ca.pem
    tls_certificate_key_file: /etc/mongodb/tls/admin.pem
  register: member
  until: member.healthy and member.majority_healthy
  retries: 60
  delay: 5
"""

RETURN = r"""
reachable:
  description: The member answered.
  returned: always
  type: bool
error:
  description: Why the member could not be reached.
  returned: when RV(reachable=false)
  type: str
replica_set:
  description: The member runs with a replica set configuration.
  returned: always
  type: bool
state:
  description: The member's numeric replica-set state (C(myState)).
  returned: always
  type: int
  sample: 2
state_str:
  description: The member's state name.
  returned: always
  type: str
  sample: SECONDARY
is_primary:
  description: The member is the writable primary.
  returned: always
  type: bool
set_name:
  description: Replica set name.
  returned: always
  type: str
  sample: rs0
primary:
  description: The primary as the member knows it (C(host:port)).
  returned: always
  type: str
pid:
  description:
    - Process id of the mongod that answered (C(serverStatus.pid)), null when the user may not run C(serverStatus).
    - The restart tasks of the C(mongod_member) role compare it with the C(MainPID) of the service on the host they
      are about to restart, so that a connection that reaches another host restarts nothing.
  returned: always
  type: int
  sample: 1234
process_host:
  description: Host name the mongod reports (C(serverStatus.host)), null when C(serverStatus) is not allowed.
  returned: always
  type: str
  sample: db1.example.net:27017
uptime_seconds:
  description: Seconds since this mongod started (C(serverStatus.uptime)), null when C(serverStatus) is not allowed.
  returned: always
  type: float
  sample: 3605.0
healthy:
  description: The member itself is PRIMARY or SECONDARY.
  returned: always
  type: bool
majority_healthy:
  description: More than half of the members are up and PRIMARY, SECONDARY or ARBITER, as this member sees them.
  returned: always
  type: bool
members:
  description: Every member as this member sees it.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(host:port) of the member.
      type: str
    state_str:
      description: State name.
      type: str
    health:
      description: 1 when up.
      type: int
    self:
      description: This is the member that answered.
      type: bool
    optime_lag_seconds:
      description: How far its last applied operation is behind the primary's (null without a primary).
      type: float
error_kind:
  description:
    - Why the member could not be read - C(unreachable) (also returned without failing, with RV(reachable=false),
      unless O(fail_on_unreachable=true)), C(auth_failed), C(command_failed) (with C(command), C(code) and
      C(code_name)), C(missing_dependency) (pymongo missing on the host). The member is C(member).
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure, and when RV(reachable=false)
  type: str
  sample: unreachable
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import MongodUnreachableError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import member_status
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.module import MongodMemberModule

UNREACHABLE = {
    "reachable": False,
    "replica_set": False,
    "state": None,
    "state_str": None,
    "is_primary": False,
    "set_name": None,
    "primary": None,
    "healthy": False,
    "majority_healthy": False,
    "members": [],
}


def run(module: MongodMemberModule) -> dict[str, Any]:
    client = module.connect()
    try:
        return {"changed": False, **member_status(client, module.member)}
    except MongodUnreachableError as error:
        if module.params["fail_on_unreachable"]:
            raise
        return {"changed": False, **UNREACHABLE, "error": str(error), "error_kind": error.kind}
    finally:
        client.close()


def main() -> None:
    module = MongodMemberModule(
        argument_spec={"fail_on_unreachable": {"type": "bool", "default": False}}, supports_check_mode=True
    )
    module.exit_json(**module.run_or_fail(run))


if __name__ == "__main__":
    main()
