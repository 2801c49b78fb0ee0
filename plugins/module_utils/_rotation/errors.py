# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The typed errors of a master key rotation, each with its ``error_kind`` and secret-free details.

They reach the operator through ``KmipOpsModule.fail_from`` like every other error of the
collection. ``details()`` carries what a playbook branches on (the member's state after a failed
run, PSMDB's own error, the recovery steps); never a password, never key material.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import KmipOpsError


class RotationError(KmipOpsError):
    """A rotation that was refused or failed; ``facts`` are returned next to ``msg``."""

    kind = "rotation"

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.facts = facts

    def details(self) -> dict[str, Any]:
        return dict(self.facts)


class MongodRunningError(RotationError):
    """mongod runs on the member (unit active, dbPath locked, live pid file): nothing was done."""

    kind = "mongod_running"


class LeftoverRotationDirError(RotationError):
    """``key.db.rotation`` from an interrupted rotation blocks PSMDB's next rotation."""

    kind = "leftover_rotation_dir"


class InterruptedRotationError(RotationError):
    """A rotation died between the keystore renames or before storage.bson: documented recovery only."""

    kind = "interrupted_rotation"


class NotKmipEncryptedError(RotationError):
    """The member has no KMIP-encrypted data to rotate (or is not configured for KMIP)."""

    kind = "not_kmip_encrypted"


class KeyMismatchError(RotationError):
    """The data is not encrypted with the key the task expects (``current_key_identifier``)."""

    kind = "key_mismatch"


class ServiceUserError(RotationError):
    """mongod cannot be run as the service user: privileges, or files the user cannot use."""

    kind = "service_user"


class RotationFailedError(RotationError):
    """mongod ran and did not rotate (PSMDB's error in ``mongod_error``), or its result was not proven."""

    kind = "rotation_failed"


class RotationTimeoutError(RotationError):
    """mongod did not exit before the deadline; it is left running (killing it mid-rotation could
    leave the keystore between two states)."""

    kind = "timeout"
