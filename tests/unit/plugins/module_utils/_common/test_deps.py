# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_common.deps: a failed import is recorded when the module loads and raised, typed, when the library is used."""

from __future__ import annotations

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import Dependency
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import MissingDependencyError


def test_an_importable_library_is_found() -> None:
    library = Dependency("json")
    with library.importing():
        import json  # noqa: F401
    assert library.found
    library.require()


def test_a_missing_library_is_raised_only_when_required() -> None:
    library = Dependency("kmipops-no-such-library")
    with library.importing():
        import kmipops_no_such_library  # type: ignore[import-not-found]  # noqa: F401
    assert not library.found
    with pytest.raises(MissingDependencyError) as caught:
        library.require()
    assert caught.value.library == "kmipops-no-such-library"
    assert "kmipops_no_such_library" in caught.value.import_error
    assert "Traceback" in (caught.value.import_traceback or "")


def test_other_errors_of_an_import_are_not_hidden() -> None:
    library = Dependency("broken")
    with pytest.raises(ZeroDivisionError), library.importing():
        _ = 1 / 0
