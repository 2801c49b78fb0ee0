# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options of the modules that wait for a condition (a replica set member caught up, a new
    # primary...); the argument spec is WAIT_ARGSPEC in module_utils/_common/waiter.py.
    DOCUMENTATION = r"""
options:
  wait_timeout:
    description:
      - How long to wait for the condition, in seconds (greater than 0). The task fails with
        C(error_kind=timeout) when the condition still does not hold at the last poll.
      - A poll that has to give up on an unreachable member may end up to O(timeout_ms) after this deadline.
    type: int
    default: 600
  wait_sleep:
    description: Seconds between two polls while waiting (greater than 0). The first poll is immediate.
    type: float
    default: 1.0
"""
