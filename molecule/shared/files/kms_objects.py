#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every object a PyKMIP server holds, read from its database (on the KMIP host). Prints JSON.

Runs with the server's own venv (/opt/pykmip/venv/bin/python, ansible.builtin.script) as root,
read-only, while the server runs (SQLite allows concurrent readers). The database is the
server's truth whoever owns an object: KMIP Locate would show a client only its own objects.
Each object: uid (as KMIP names it), object type, owner (the registering client's certificate
CN), state. Key material is never read.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from enum import Enum

from kmip.core import enums


def _name(enum: type[Enum], value: int | None) -> str | None:
    return None if value is None else enum(value).name


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="/var/lib/pykmip/pykmip.db")
    args = parser.parse_args()
    connection = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT m.uid, m.object_type, m.owner, c.state FROM managed_objects m "
            "LEFT JOIN crypto_objects c ON c.uid = m.uid ORDER BY m.uid"
        ).fetchall()
    finally:
        connection.close()
    objects = [
        {
            "uid": str(uid),
            "type": _name(enums.ObjectType, object_type),
            "owner": owner,
            "state": _name(enums.State, state),
        }
        for uid, object_type, owner, state in rows
    ]
    print(json.dumps({"objects": objects}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
