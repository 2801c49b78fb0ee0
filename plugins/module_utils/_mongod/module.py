# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The base class of the modules that connect to one mongod (doc fragment kmipops.psmdb.mongod_connection)."""

from __future__ import annotations

import os
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import PYMONGO
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.module import KmipOpsModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import (
    INT32_MAX,
    PORT_BOUND,
    IntBound,
    check_host,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.member import (
    MEMBER_CONNECTION_ARGSPEC,
    connect,
    connection_warnings,
    member_address,
)

#: the bounds of the connection options (documented in the mongod_connection doc fragment)
MEMBER_CONNECTION_BOUNDS: dict[str, IntBound] = {
    "login_port": PORT_BOUND,
    "timeout_ms": IntBound(1, INT32_MAX, "milliseconds; pymongo and mongod take a 32-bit int"),
}


class MongodMemberModule(KmipOpsModule):
    """A module that talks to one replica-set member with pymongo (direct connection)."""

    ARGUMENT_SPEC = MEMBER_CONNECTION_ARGSPEC
    OPTION_BOUNDS = MEMBER_CONNECTION_BOUNDS
    DEPENDENCIES = (PYMONGO,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for warning in connection_warnings(self.params):
            self.warn(warning)

    def validate_options(self) -> None:
        """What pymongo would only find out while connecting, checked before any connection."""
        super().validate_options()
        validate_member_connection(self.params)

    @property
    def member(self) -> str:
        """``host:port`` of the member, as messages name it."""
        return member_address(self.params)

    def connect(self) -> Any:
        """A pymongo client bound to exactly this member (lazy until the first command)."""
        return connect(self.params)


def validate_member_connection(params: dict[str, Any]) -> None:
    """Raise ``InvalidOptionError`` for connection options that cannot work."""
    check_host("login_host", params.get("login_host"))
    if params.get("login_user") is not None:
        if not params["login_user"]:
            raise InvalidOptionError("login_user", "is empty; omit it to connect without authentication")
        if not params.get("login_password"):
            raise InvalidOptionError("login_password", "is required with login_user (the user's password)")
    elif params.get("login_password") is not None:
        raise InvalidOptionError("login_password", "requires login_user (the user the password belongs to)")
    if not params.get("login_database"):
        raise InvalidOptionError("login_database", "is empty (allowed: the database the user is defined in)")
    for option in ("tls_ca_file", "tls_certificate_key_file"):
        path = params.get(option)
        if path is None:
            continue
        if not path:
            raise InvalidOptionError(option, "is empty (allowed: the path of a PEM file)")
        if not os.path.isfile(path):
            raise InvalidOptionError(option, f"{path} does not exist or is not a file")
        if not os.access(path, os.R_OK):
            raise InvalidOptionError(option, f"{path} is not readable by this user")
    if params.get("tls_certificate_key_file_password") is not None and not params.get("tls_certificate_key_file"):
        raise InvalidOptionError(
            "tls_certificate_key_file_password", "requires tls_certificate_key_file (the key it decrypts)"
        )
