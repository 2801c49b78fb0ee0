# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The base class of the modules that connect to one mongod (doc fragment kmipops.psmdb.mongod_connection)."""

from __future__ import annotations

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.module import KmipOpsModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import (
    MEMBER_CONNECTION_ARGSPEC,
    connect,
    connection_warnings,
    member_address,
)


class MongodMemberModule(KmipOpsModule):
    """A module that talks to one replica-set member with pymongo (direct connection)."""

    ARGUMENT_SPEC = MEMBER_CONNECTION_ARGSPEC
    DEPENDENCIES = (PYMONGO,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for warning in connection_warnings(self.params):
            self.warn(warning)

    @property
    def member(self) -> str:
        """``host:port`` of the member, as messages name it."""
        return member_address(self.params)

    def connect(self) -> Any:
        """A pymongo client bound to exactly this member (lazy until the first command)."""
        return connect(self.params)
