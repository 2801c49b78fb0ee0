#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible inventory script: the replica sets of the rotation scenario and of its benchmark.

Used beside molecule/shared/inventory/hosts.yml, which gives the KMIP servers, the group
variables of `mongod` and the hosts mongo1..mongo3. This script adds the members of every
replica set, three per set, as mongo1, mongo2, ... (mongo1..3 keep their names and addresses),
and the per-host settings the shared playbooks read:

- kmipops_test_replset: the member's replica set;
- kmipops_test_cluster_role: sharding.clusterRole (configsvr / shardsvr), written into
  mongod.conf only while kmipops_test_cluster_role_enabled is true;
- kmipops_test_set_parameters: mongod setParameters, written only while
  kmipops_test_set_parameters_enabled is true. The first member of every set keeps mongod's
  default 15 s shutdown quiesce (shutdownTimeoutMillisForSignaledShutdown); the others get
  1 s, so that a rolling operation meets both.

Groups: `mongod` (every member) and `replset_<name>` per replica set.

KMIPOPS_TEST_FLEET lists the sets as `name[:clusterRole]`, comma separated; the default is the
Molecule scenario's sharded pair: `cfg:configsvr,rs1:shardsvr`. The benchmark sets e.g.
`rs1,rs2,rs3,rs4`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

DEFAULT_FLEET = "cfg:configsvr,rs1:shardsvr"
MEMBERS_PER_SET = 3
FIRST_MEMBER_OCTET = 21  # mongo1 is <net>.21, as in hosts.yml
SHORT_QUIESCE_MS = 1000
CLUSTER_ROLES = ("configsvr", "shardsvr")


def parse_fleet(spec: str) -> list[tuple[str, str | None]]:
    sets: list[tuple[str, str | None]] = []
    for entry in (part.strip() for part in spec.split(",")):
        name, _, role = entry.partition(":")
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", name):
            raise ValueError(f"KMIPOPS_TEST_FLEET: bad replica set name {name!r} (lower-case letters and digits)")
        if role and role not in CLUSTER_ROLES:
            raise ValueError(f"KMIPOPS_TEST_FLEET: {name}: clusterRole must be one of {CLUSTER_ROLES}, not {role!r}")
        if name in (known for known, _ in sets):
            raise ValueError(f"KMIPOPS_TEST_FLEET: replica set {name} listed twice")
        sets.append((name, role or None))
    if FIRST_MEMBER_OCTET + len(sets) * MEMBERS_PER_SET > 255:
        raise ValueError("KMIPOPS_TEST_FLEET: too many replica sets for one /24")
    return sets


def inventory(spec: str) -> dict[str, Any]:
    hostvars: dict[str, dict[str, Any]] = {}
    groups: dict[str, Any] = {"mongod": {"hosts": []}}
    number = 0
    for name, role in parse_fleet(spec):
        members = []
        for index in range(MEMBERS_PER_SET):
            number += 1
            host = f"mongo{number}"
            members.append(host)
            hostvars[host] = {
                # the same spelled-out form as hosts.yml (see the comment on ansible_host there)
                "ansible_host": "{{ kmipops_test_prefix }}" + host,
                "kmipops_test_address": "{{ kmipops_test_net }}." + str(FIRST_MEMBER_OCTET + number - 1),
                "kmipops_test_replset": name,
                "kmipops_test_set_parameters": (
                    {} if index == 0 else {"shutdownTimeoutMillisForSignaledShutdown": SHORT_QUIESCE_MS}
                ),
            }
            if role:
                hostvars[host]["kmipops_test_cluster_role"] = role
        groups["mongod"]["hosts"] += members
        groups[f"replset_{name}"] = {"hosts": members}
    groups["mongod"]["vars"] = {
        # sharding.clusterRole and setParameter in mongod.conf (molecule/shared/templates/mongod.conf.j2)
        "kmipops_test_cluster_role_enabled": True,
        "kmipops_test_set_parameters_enabled": True,
    }
    # `all` reaches the implicit localhost too: the controller-side plays use them
    groups["all"] = {
        "vars": {
            # the tools' inputs, records and reports (Molecule's ephemeral directory, or the bench's)
            "kmipops_rotation_dir": "{{ kmipops_test_state_dir }}/rotation",
            # molecule/shared/files: fleet_*.py run on the controller with the Python running Ansible
            "kmipops_rotation_tools": "{{ kmipops_test_repo_dir }}/molecule/shared/files",
        }
    }
    return {**groups, "_meta": {"hostvars": hostvars}}


def main(argv: list[str]) -> int:
    try:
        data = inventory(os.environ.get("KMIPOPS_TEST_FLEET") or DEFAULT_FLEET)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if len(argv) > 1 and argv[1] == "--host":
        print(json.dumps(data["_meta"]["hostvars"].get(argv[2], {})))
    else:
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
