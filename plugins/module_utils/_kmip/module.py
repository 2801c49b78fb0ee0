# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The base classes of the modules that take the KMIP options (doc fragment kmipops.psmdb.kmip)."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import CRYPTOGRAPHY, PYKMIP
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.module import KmipOpsModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import (
    KMIP_CONNECTION_ARGSPEC,
    KMIP_OPTION_BOUNDS,
    KMIP_VERSIONS,
    KmipSettings,
)


class KmipModule(KmipOpsModule):
    """A module that accepts mongod's KMIP connection options (``security.kmip.*`` in snake_case)."""

    ARGUMENT_SPEC = KMIP_CONNECTION_ARGSPEC
    OPTION_BOUNDS = KMIP_OPTION_BOUNDS

    def validate_options(self) -> None:
        """The KMIP options as mongod would check them (bounds, host names), before any file or server."""
        super().validate_options()
        self.kmip_settings().validate(require_connection=False)

    def kmip_settings(self) -> KmipSettings:
        """The options the operator set, as a model (``None`` for what was not set)."""
        return KmipSettings.from_params(self.params)


class KmipSessionModule(KmipModule):
    """A module that opens KMIP sessions itself (doc fragment kmipops.psmdb.kmip.session)."""

    ARGUMENT_SPEC: ClassVar[dict[str, dict[str, Any]]] = {
        "kmip_version": {"type": "str", "default": "1.0", "choices": list(KMIP_VERSIONS)},
    }
    DEPENDENCIES = (PYKMIP, CRYPTOGRAPHY)
