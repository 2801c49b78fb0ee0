# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The base class of every module of the collection: argument specs, libraries, one error mapping.

Each subclass owns the argument spec of one family of options (``ARGUMENT_SPEC``: the KMIP
connection, the mongod connection...), documented by one doc fragment; a module adds only its
own options, and its integer bounds (``OPTION_BOUNDS``, checked before anything runs, documented
in the doc fragment). ``fail_from`` is the one place where a typed error becomes a task failure;
``run_or_fail`` also turns any unexpected exception into ``error_kind: internal_error`` without
its text (which may hold a secret).
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NoReturn, TypeVar

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import Dependency
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import (
    InvalidOptionError,
    KmipOpsError,
    MissingDependencyError,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import (
    IntBound,
    check_bounds,
    check_texts,
)

ModuleT = TypeVar("ModuleT", bound="KmipOpsModule")


class KmipOpsModule(AnsibleModule):
    """An AnsibleModule with the options of its classes, its libraries checked, typed errors mapped."""

    #: the options this class adds (every class along the MRO contributes its own)
    ARGUMENT_SPEC: ClassVar[dict[str, dict[str, Any]]] = {}
    #: libraries every run of a module of this class needs
    DEPENDENCIES: ClassVar[tuple[Dependency, ...]] = ()
    #: allowed ranges of the integer options this class adds (every class along the MRO too)
    OPTION_BOUNDS: ClassVar[dict[str, IntBound]] = {}

    def __init__(
        self,
        argument_spec: dict[str, Any] | None = None,
        dependencies: Iterable[Dependency] = (),
        bounds: dict[str, IntBound] | None = None,
        **kwargs: Any,
    ) -> None:
        spec = {**self.class_argument_spec(), **(argument_spec or {})}
        super().__init__(argument_spec=spec, **kwargs)
        try:
            check_texts(self.params, spec)
            check_bounds(self.params, {**self.class_option_bounds(), **(bounds or {})})
            self.validate_options()
        except InvalidOptionError as error:
            self.fail_from(error)
        except Exception as exc:
            self.fail_internal(exc)
        self.require(*self.DEPENDENCIES, *dependencies)

    def validate_options(self) -> None:
        """Checks of a family of options that need no library and no peer (subclasses extend)."""

    @classmethod
    def class_option_bounds(cls) -> dict[str, IntBound]:
        """The integer bounds the classes of ``cls`` own, base classes first."""
        bounds: dict[str, IntBound] = {}
        for klass in reversed(cls.__mro__):
            bounds.update(vars(klass).get("OPTION_BOUNDS", {}))
        return bounds

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
        except Exception as exc:
            self.fail_internal(exc, **fail_result)

    def fail_internal(self, exc: BaseException, **result: Any) -> NoReturn:
        """An unexpected exception as ``error_kind: internal_error``.

        The exception's text is never shown: it may quote a file line or a password. The message
        names its type and where it was raised; the traceback (code locations, no values) is
        returned as ``exception``, which Ansible shows with -vvv only.
        """
        result.setdefault("changed", False)
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
        # locations only, not even the source lines: a line may hold a literal
        stack = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n' for f in frames)
        self.fail_json(
            msg=(
                f"internal error of the module: unexpected {type(exc).__name__}{where}; nothing more is shown because "
                "its text may hold a secret. Please report it with the task's options (without passwords)"
            ),
            error_kind="internal_error",
            exception=f"Traceback (most recent call last):\n{stack}{type(exc).__name__} (message withheld)",
            **result,
        )
