# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The Python libraries the modules need on the managed host, checked one way.

A module_utils file imports a library inside ``with LIBRARY.importing():``; when the import
fails the module still loads, and the first use calls ``LIBRARY.require()``, which raises
``MissingDependencyError``. The module base class turns that error into Ansible's
``missing_required_lib`` message, so no file tests ``HAS_...`` flags or raises its own error.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import MissingDependencyError


class Dependency:
    """One importable library, named as ``pip install`` knows it."""

    def __init__(self, library: str) -> None:
        self.library = library
        self.import_error: str | None = None
        self.import_traceback: str | None = None

    @contextmanager
    def importing(self) -> Iterator[None]:
        """Run the imports of this library; an ImportError is recorded, not raised."""
        try:
            yield
        except ImportError as exc:
            self.import_error = str(exc)
            self.import_traceback = traceback.format_exc()

    @property
    def found(self) -> bool:
        return self.import_error is None

    def require(self) -> None:
        """Raise ``MissingDependencyError`` when the library could not be imported."""
        if self.import_error is not None:
            raise MissingDependencyError(self.library, self.import_error, self.import_traceback)


#: the libraries of requirements.txt, one object each, shared by every module_utils file
CRYPTOGRAPHY = Dependency("cryptography")
PYKMIP = Dependency("pykmip")
PYMONGO = Dependency("pymongo")
RUAMEL_YAML = Dependency("ruamel.yaml")
