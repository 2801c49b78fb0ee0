# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The base class of every module of the collection: argument specs, libraries, one error mapping.

Each subclass owns the argument spec of one family of options (``ARGUMENT_SPEC``: the KMIP
connection, the mongod connection...), documented by one doc fragment; a module adds only its
own options. ``fail_from`` is the one place where a typed error becomes a task failure.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NoReturn, TypeVar

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import Dependency
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    KmipOpsError,
    MissingDependencyError,
)

ModuleT = TypeVar("ModuleT", bound="KmipOpsModule")


class KmipOpsModule(AnsibleModule):
    """An AnsibleModule with the options of its classes, its libraries checked, typed errors mapped."""

    #: the options this class adds (every class along the MRO contributes its own)
    ARGUMENT_SPEC: ClassVar[dict[str, dict[str, Any]]] = {}
    #: libraries every run of a module of this class needs
    DEPENDENCIES: ClassVar[tuple[Dependency, ...]] = ()

    def __init__(
        self,
        argument_spec: dict[str, Any] | None = None,
        dependencies: Iterable[Dependency] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(argument_spec={**self.class_argument_spec(), **(argument_spec or {})}, **kwargs)
        self.require(*self.DEPENDENCIES, *dependencies)

    @classmethod
    def class_argument_spec(cls) -> dict[str, dict[str, Any]]:
        """The options the classes of ``cls`` own, base classes first."""
        spec: dict[str, dict[str, Any]] = {}
        for klass in reversed(cls.__mro__):
            spec.update(copy.deepcopy(vars(klass).get("ARGUMENT_SPEC", {})))
        return spec

    def require(self, *dependencies: Dependency) -> None:
        """Fail the task (missing_required_lib) unless every library is importable."""
        try:
            for dependency in dependencies:
                dependency.require()
        except MissingDependencyError as error:
            self.fail_from(error)

    def fail_from(self, error: KmipOpsError, **result: Any) -> NoReturn:
        """The one place where a typed error becomes a task failure (``msg`` + ``error_kind``)."""
        result.setdefault("changed", False)
        for key, value in error.details().items():
            result.setdefault(key, value)
        if isinstance(error, MissingDependencyError):
            message = f"{missing_required_lib(error.library)}. {error.HINT}"
            if error.import_traceback:
                result["exception"] = error.import_traceback
            self.fail_json(msg=message, error_kind=error.kind, **result)
        self.fail_json(msg=str(error), error_kind=error.kind, **result)

    def run_or_fail(self: ModuleT, run: Callable[[ModuleT], dict[str, Any]], **fail_result: Any) -> dict[str, Any]:
        """The result of ``run(self)``; a typed error ends the task through ``fail_from``."""
        try:
            return run(self)
        except KmipOpsError as error:
            self.fail_from(error, **fail_result)
