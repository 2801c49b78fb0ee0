# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the unit tests (PKI, running a module in-process, a scripted mongod)."""

from __future__ import annotations

from pathlib import Path

#: tests/unit/fixtures: the mongod.conf corpus and other static inputs
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
