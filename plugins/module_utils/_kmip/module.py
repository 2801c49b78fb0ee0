# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Shared base class of the collection's modules: one argument spec, one error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import KmipOpsError
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import (
    KMIP_CONNECTION_ARGSPEC,
    KMIP_VERSIONS,
    KmipSettings,
)

#: Options of the modules that talk KMIP themselves (doc fragment kmipops.psmdb.kmip.session).
KMIP_SESSION_ARGSPEC: dict[str, dict[str, Any]] = {
    "kmip_version": {"type": "str", "default": "1.0", "choices": list(KMIP_VERSIONS)},
}


ModuleT = TypeVar("ModuleT", bound="KmipModule")


class KmipModule(AnsibleModule):
    """An AnsibleModule that accepts the KMIP connection options of the doc fragment."""

    def __init__(self, argument_spec: dict[str, Any] | None = None, **kwargs: Any) -> None:
        spec: dict[str, Any] = {name: dict(opts) for name, opts in KMIP_CONNECTION_ARGSPEC.items()}
        spec.update(argument_spec or {})
        super().__init__(argument_spec=spec, **kwargs)

    def kmip_settings(self) -> KmipSettings:
        """The options the operator set, as a model (``None`` for what was not set)."""
        return KmipSettings.from_params(self.params)

    def fail_from(self, error: KmipOpsError, **result: Any) -> NoReturn:
        """The one place where a typed error becomes a task failure."""
        result.setdefault("changed", False)
        for key, value in error.details().items():
            result.setdefault(key, value)
        self.fail_json(msg=str(error), error_kind=error.kind, **result)

    def run_or_fail(self: ModuleT, run: Callable[[ModuleT], dict[str, Any]], **fail_result: Any) -> dict[str, Any]:
        """The result of ``run(self)``; a typed error ends the task through ``fail_from``."""
        try:
            return run(self)
        except KmipOpsError as error:
            self.fail_from(error, **fail_result)


class KmipSessionModule(KmipModule):
    """A module that opens KMIP sessions itself: adds ``kmip_version``."""

    def __init__(self, argument_spec: dict[str, Any] | None = None, **kwargs: Any) -> None:
        spec: dict[str, Any] = {name: dict(opts) for name, opts in KMIP_SESSION_ARGSPEC.items()}
        spec.update(argument_spec or {})
        super().__init__(argument_spec=spec, **kwargs)
