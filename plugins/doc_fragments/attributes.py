# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What the attributes of every module mean. Each module extends this fragment and the
    # fragment of its action group (meta/runtime.yml), and says in its own `attributes` how far
    # it supports each one.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode, and then reports what it would change without changing it.
  diff_mode:
    description: Returns what changed (or would change in check mode) in diff mode.
  platform:
    description: The target operating systems (every module of this collection runs on POSIX hosts).
    support: N/A
    platforms: posix
"""

    # Modules that take the KMIP options of the kmipops.psmdb.kmip doc fragment (port = the KMIP port).
    ACTIONGROUP_KMIP = r"""
options: {}
attributes:
  action_group:
    description:
      - Part of the C(kmip) action group, with the other modules that take the KMIP options (O(port) is the
        KMIP port in all of them).
      - Use C(group/kmipops.psmdb.kmip) in C(module_defaults) to give the KMIP connection once.
    support: full
    membership:
      - kmipops.psmdb.kmip
"""

    # Modules that connect to one mongod (doc fragment kmipops.psmdb.mongod_connection).
    ACTIONGROUP_MONGOD = r"""
options: {}
attributes:
  action_group:
    description:
      - Part of the C(mongod) action group, with the other modules that connect to one mongod (O(login_port) is
        the mongod port in all of them).
      - Use C(group/kmipops.psmdb.mongod) in C(module_defaults) to give the mongod connection once.
    support: full
    membership:
      - kmipops.psmdb.mongod
"""
