#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mongod_replset_info
short_description: The replica set as its primary sees it, and waiting until the set sees a member healthy and caught up
version_added: 0.1.0
description:
  - Connects to one member (direct connection, no replica-set discovery), follows C(hello.primary) to the primary and
    reads C(replSetGetStatus), C(replSetGetConfig) and the first and last entries of the primary's oplog there.
    Returns every member as the B(primary) sees it, with its lag behind the primary.
  - When the member at O(login_host):O(login_port) cannot be reached (for example while it restarts), the members in
    O(seeds) are tried in their order.
  - With O(wait_for), polls every O(wait_sleep) seconds until the condition holds on the primary's view, or fails
    with C(error_kind=timeout) after O(wait_timeout) seconds. A restarted member says it is SECONDARY seconds before
    the other members stop seeing it down, so waiting on the member's own word is not enough before the next member
    is taken down; O(wait_for=member_caught_up) waits until the SET sees it.
  - While waiting, members that cannot be reached are part of what a poll sees, not a failure. Wrong credentials, a
    mongod that is no replica set member and a O(member) that the primary does not know fail at once.
  - Read-only. With authentication, O(login_user) needs C(replSetGetStatus) and C(replSetGetConfig) (role
    C(clusterMonitor)) on every member; without C(find) on C(local.oplog.rs) RV(oplog_window_seconds) is null,
    without C(collStats) on it RV(oplog_fill_ratio). All
    members are reached with the same credentials and TLS options, at the names of the replica set configuration.
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
    details:
      - Read-only, so it reads the set in check mode too, but it does not wait; RV(condition_met) says whether
        O(wait_for) holds at that one read.
  diff_mode:
    support: none
options:
  seeds:
    description:
      - Other members (C(host:port)) to ask when the member at O(login_host):O(login_port) cannot be reached, tried in
        this order. The member that answered last is asked first at the next poll.
    type: list
    elements: str
    default: []
  member:
    description:
      - The member that O(wait_for=member_caught_up) and O(not_member) are about, C(host:port) as in the replica set
        configuration.
      - Default is the name (C(hello.me)) of the member at O(login_host):O(login_port); while that member has not
        answered yet, its name is unknown and the condition does not hold.
      - A name that the primary does not know fails with C(error_kind=invalid_option).
    type: str
  wait_for:
    description:
      - What to wait for, on the primary's view.
      - C(none) - read once, do not wait.
      - C(member_caught_up) - the primary sees O(member) SECONDARY (or PRIMARY), healthy, and its lag is at most
        O(max_lag_seconds).
      - C(primary) - some member is PRIMARY (and, with O(not_member=true), it is not O(member)).
      - C(set_healthy) - every member is healthy (PRIMARY, SECONDARY or ARBITER) and the lag of every data-bearing
        member is at most O(max_lag_seconds).
    type: str
    choices: [none, member_caught_up, primary, set_healthy]
    default: none
  not_member:
    description: With O(wait_for=primary), the primary must be another member than O(member) (after a step-down).
    type: bool
    default: false
  max_lag_seconds:
    description: The largest lag behind the primary, in seconds (0 or more), that counts as caught up.
    type: int
    default: 10
  watch_service:
    description:
      - With O(wait_for=member_caught_up), run on the member's own host, the systemd unit of that member's mongod
        (for example C(mongod.service)). Each poll also asks systemd about it (C(systemctl show)), and when the unit is
        C(inactive) or C(failed) (or C(active) with its process gone) the wait ends at once with
        C(error_kind=member_stopped) instead of waiting out O(wait_timeout) - for example a mongod that exits right
        after its start because no KMIP server answers (with C(Type=simple) units, C(systemctl start) succeeds before
        mongod reads its keystore). C(activating) (also systemd's C(auto-restart)) keeps the wait going.
      - The failure returns RV(service), RV(mongod_log) and RV(journal).
      - A unit that systemd does not know fails with C(error_kind=invalid_option).
    type: str
  watch_config:
    description:
      - With O(watch_service), the member's mongod.conf on this host. When the unit is seen stopped, the last lines of
        the log it names (C(systemLog.path)) and what mongod's last run ended with are returned in RV(mongod_log);
        the values of its secret options (the KMIP client certificate password, the TLS key passwords) are masked in
        every line returned.
    type: path
notes:
  - The lag of a member is the primary's last applied operation time minus the member's, as the primary last heard of
    it (C(optime)), so it has the resolution of a second and is only as fresh as the last heartbeat.
  - Lines returned with C(error_kind=member_stopped) never include mongod's log 21951 (PSMDB echoes the KMIP password
    there); a line that names a password or a secret is replaced by C((line withheld - it may hold a secret)).
"""

EXAMPLES = r"""
- name: Read the replica set from its primary
  kmipops.psmdb.mongod_replset_info:
    login_port: 27017
  register: rs

- name: Restart the member, then wait until the primary sees it back and caught up
  kmipops.psmdb.mongod_replset_info:
    login_host: db2.example.net
    member: db2.example.net:27017
    seeds:
      - db1.example.net:27017
      - db3.example.net:27017
    wait_for: member_caught_up
    max_lag_seconds: 5
    wait_timeout: 900

- name: Wait for the restarted member, but stop at once if its mongod exits (e.g. no KMIP server answers)
  kmipops.psmdb.mongod_replset_info:
    login_host: db1.example.net
    member: db2.example.net:27017
    seeds: [db3.example.net:27017]
    wait_for: member_caught_up
    watch_service: mongod.service
    watch_config: /etc/mongod.conf
    wait_timeout: 900
  register: caught_up
  failed_when: caught_up is failed  # error_kind member_stopped: caught_up.service, caught_up.mongod_log

- name: After a step-down, wait for another primary
  kmipops.psmdb.mongod_replset_info:
    member: db1.example.net:27017
    seeds: [db2.example.net:27017, db3.example.net:27017]
    wait_for: primary
    not_member: true
    wait_timeout: 120
"""

RETURN = r"""
set_name:
  description: Replica set name; null when no member answered.
  returned: always
  type: str
  sample: rs0
primary:
  description: The primary (C(host:port)); null when there is none.
  returned: always
  type: str
  sample: db1.example.net:27017
term:
  description: The election term of the view; null when unknown.
  returned: always
  type: int
  sample: 4
members:
  description:
    - Every member as the primary sees it (as the first member that answered sees it when no primary could be read).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(host:port) as in the replica set configuration.
      type: str
    state_str:
      description: State name (C(PRIMARY), C(SECONDARY), C(ARBITER), C(RECOVERING), C((not reachable/healthy))...).
      type: str
    health:
      description: The member is up as the viewing member sees it.
      type: bool
    lag_seconds:
      description: Seconds its last applied operation is behind the primary's (0 or more); null when unknown
        (no primary, member down, arbiter).
      type: float
    priority:
      description: Election priority from the replica set configuration.
      type: float
    votes:
      description: Votes from the replica set configuration.
      type: int
    hidden:
      description: Hidden member.
      type: bool
    arbiter_only:
      description: Arbiter.
      type: bool
    is_self:
      description: This is the member named in RV(self).
      type: bool
self:
  description:
    - Name of the member the module talked to first - the member at O(login_host):O(login_port) once it has answered,
      otherwise the first member of O(seeds) that answered. Null when none answered.
  returned: always
  type: str
  sample: db2.example.net:27017
healthy:
  description: There is a primary and every member is up in PRIMARY, SECONDARY or ARBITER.
  returned: always
  type: bool
majority_survives_one_down:
  description:
    - A majority of the votes stays with healthy members even if one more healthy data-bearing member goes down
      (whichever it is). False means taking down another member now could leave the set without a primary.
  returned: always
  type: bool
max_lag_seconds_seen:
  description: The largest RV(members[].lag_seconds) known; null when none is known.
  returned: always
  type: float
  sample: 0.0
oplog_window_seconds:
  description:
    - Seconds between the first and the last entry of the primary's oplog, how long a member may be down and still
      catch up without an initial sync. Null without a primary or without C(find) on C(local.oplog.rs).
  returned: always
  type: float
  sample: 86400.0
oplog_fill_ratio:
  description:
    - The primary's oplog size over its maximum size (C(collStats) C(size) / C(maxSize) of C(local.oplog.rs), as
      C(db.getReplicationInfo()) reads them); below 1 the oplog has not truncated anything yet. Null without a
      primary or without C(collStats) on C(local.oplog.rs).
  returned: always
  type: float
  sample: 0.02
oplog_capacity_window_seconds:
  description:
    - How long the primary's oplog keeps an entry at the write rate seen so far - RV(oplog_window_seconds) once the
      oplog is full, else that window grown to the whole oplog (RV(oplog_window_seconds) / RV(oplog_fill_ratio)). A
      young set's oplog holds minutes but truncates nothing until it is full; this is the window a member that is
      down (or in initial sync) from now on can count on. RV(oplog_window_seconds) when the fill is unknown.
  returned: always
  type: float
  sample: 345600.0
condition_met:
  description: O(wait_for) holds at the last read (always true after a wait and with O(wait_for=none)).
  returned: always
  type: bool
waited_seconds:
  description: How long the module waited (0 without O(wait_for), and in check mode).
  returned: always
  type: float
  sample: 4.2
last_view:
  description: On C(error_kind=timeout) or C(member_stopped), the returns above (RV(members), RV(primary)...) at the
    last poll.
  returned: on wait timeout, or when the watched unit stopped
  type: dict
last_observed:
  description: On C(error_kind=timeout), the last poll in words (why the condition did not hold, each member's state).
  returned: on wait timeout
  type: str
service:
  description:
    - With O(watch_service), on C(error_kind=member_stopped) (and on C(timeout)), the unit as systemd last showed it.
  returned: on failure with watch_service
  type: dict
  contains:
    name:
      description: The unit.
      type: str
    active_state:
      description: C(ActiveState) (C(inactive), C(failed), C(active)...).
      type: str
    sub_state:
      description: C(SubState) (C(dead), C(failed), C(running), C(auto-restart)...).
      type: str
    result:
      description: C(Result), why it last stopped (C(success), C(exit-code), C(signal), C(timeout)...).
      type: str
    exec_main_code:
      description: How its last main process ended (C(exited), C(killed), C(dumped)); null when unknown.
      type: str
    exec_main_status:
      description: Its exit status (or signal number).
      type: int
    main_pid:
      description: C(MainPID), null when none.
      type: int
    load_state:
      description: C(LoadState).
      type: str
    restart:
      description: C(Restart=) of the unit.
      type: str
  sample: {name: mongod.service, active_state: failed, sub_state: failed, result: exit-code, exec_main_code: exited,
           exec_main_status: 1, main_pid: null, load_state: loaded, restart: "no"}
mongod_log:
  description:
    - On C(error_kind=member_stopped), with O(watch_config) - C(path) of mongod's log, its last C(lines) (newest last,
      shortened logv2 documents, secrets masked, log 21951 never read) and C(last_run) (C(pid), C(started_at),
      C(outcome), C(exit_code), C(error) - PSMDB's own error, e.g. its 29120 encryption error).
  returned: on failure with watch_service
  type: dict
journal:
  description: On C(error_kind=member_stopped), the unit's last journal lines (systemd's own), when journalctl works.
  returned: on failure with watch_service
  type: list
  elements: str
error_kind:
  description:
    - Why the task failed, for playbooks to branch on.
    - C(member_stopped) - with O(watch_service), the member's unit was seen inactive or failed while waiting, with
      RV(service), RV(mongod_log), RV(journal), RV(last_view) and C(waited_seconds).
    - C(timeout) - O(wait_for) did not hold within O(wait_timeout), with RV(last_view) and RV(last_observed).
    - C(unreachable) - without O(wait_for), no member answered (the member is C(member)).
    - C(auth_failed), C(not_replica_set), C(command_failed) (with C(command), C(code) and C(code_name)).
    - C(invalid_option) (named in C(option)), for example a O(member) that the primary does not know;
      C(missing_dependency) (pymongo missing on the host).
  returned: on failure
  type: str
  sample: timeout
"""

from ansible_collections.kmipops.psmdb.plugins.module_utils._replset.info import (
    REPLSET_INFO_ARGSPEC,
    ReplsetInfoModule,
    replset_info,
)


def main() -> None:
    module = ReplsetInfoModule(argument_spec=REPLSET_INFO_ARGSPEC, supports_check_mode=True)
    module.exit_json(
        **module.run_or_fail(
            lambda m: replset_info(
                m.params,
                m.check_mode,
                systemctl=lambda: m.get_bin_path("systemctl", required=True),
                journalctl=lambda: m.get_bin_path("journalctl"),
            )
        )
    )


if __name__ == "__main__":
    main()
