# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the module_utils tests."""

from __future__ import annotations

import pytest

from kmiplab.pki import LabPki, build_lab_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    """The PyKMIP lab's PKI (CA, mongod identities, bad variants); nothing connects to its server."""
    return build_lab_pki(tmp_path_factory.mktemp("pki"), servers={"kmip1": ("127.0.20.10",)})
