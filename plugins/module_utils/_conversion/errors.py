# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The typed errors of a member's conversion to KMIP (``error_kind`` + secret-free facts)."""

from __future__ import annotations

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import KmipOpsError


class ConversionError(KmipOpsError):
    """A conversion step that was refused or failed; ``facts`` are returned next to ``msg``."""

    kind = "conversion"

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.facts = facts

    def details(self) -> dict[str, Any]:
        return dict(self.facts)


class MongodRunningError(ConversionError):
    """mongod runs on the member (unit active or ``mongod.lock`` held): nothing was touched."""

    kind = "mongod_running"


class NotSameFilesystemError(ConversionError):
    """The dbPath cannot be renamed aside on its own filesystem (a mount point, a symlink...)."""

    kind = "not_same_filesystem"


class NoSetAsideCopyError(ConversionError):
    """A restore or a purge found no set-aside copy of this dbPath (no manifest)."""

    kind = "no_set_aside_copy"


class UnexpectedDbPathError(ConversionError):
    """The dbPath is not the one this module created, or not what the step expects: nothing was touched."""

    kind = "unexpected_db_path"
