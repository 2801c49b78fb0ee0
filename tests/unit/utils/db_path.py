# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A mongod dbPath as mongod leaves it: storage.bson (with or without encryption options) and data files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bson


def write_storage_bson(db: Path, encryption: dict | None, data_files: bool = True) -> None:
    """storage.bson as mongod writes it on first start; ``encryption``: storage.options.encryption."""
    db.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"directoryPerDB": False, "directoryForIndexes": False}
    if encryption is not None:
        options["encryption"] = encryption
    (db / "storage.bson").write_bytes(bson.encode({"storage": {"engine": "wiredTiger", "options": options}}))
    if data_files:
        (db / "WiredTiger").write_text("WiredTiger\n")
