# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the module tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mockupdb import MockupDB

from unit.utils.scripted_mongod import scripted_member


@pytest.fixture
def member() -> Iterator[MockupDB]:
    """A scripted mongod on 127.0.50.x; tests script its answers with ``serve``."""
    with scripted_member() as server:
        yield server
