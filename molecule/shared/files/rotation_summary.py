#!/usr/bin/env python3
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rotation in a few lines, for a newcomer (the end of `make lab`). Prints text.

    rotation_summary.py --check REPORT [--run RUN]

REPORT is fleet_check.py's JSON report of the rotation (molecule/rotation/verify.yml writes it
as report-main.json): per member the key before -> after (storage.bson), per set the elections
(replSetGetStatus.term) and the primary before -> after, the writes the writer had acknowledged
and found afterwards on every member, and whether every check passed. RUN (rotation-main.json,
also from verify.yml) gives the rotation playbook's exit status and wall time. These are the harness's
findings from outside the collection; the collection's own report (kmip_rotation_report_path)
is printed by the playbook itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", required=True, help="fleet_check.py's JSON report")
    parser.add_argument("--run", help="rotation-main.json: the playbook's rc and wall time (h:mm:ss.ffffff)")
    args = parser.parse_args()
    report = json.loads(Path(args.check).read_text(encoding="utf-8"))
    checks = report["checks"]
    lines = ["Master key rotation (judged from outside the collection):"]
    if args.run and Path(args.run).exists():
        run = json.loads(Path(args.run).read_text(encoding="utf-8"))
        hours, minutes, seconds = (run.get("delta") or "0:0:0").split(":")
        total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        lines.append(f"  time: {total:.0f} s for the whole fleet playbook (exit status {run.get('rc')})")
    for host, info in sorted(checks.get("keys", {}).get("details", {}).items()):
        state = info.get("kms", {}).get("state", "?")
        lines.append(f"  {host}: key {info.get('old')} -> {info.get('new')} (new key {state} on the KMS)")
    for name, info in sorted(checks.get("elections", {}).get("details", {}).items()):
        primaries = f"{info['primary_before']} -> {info['primary_after']}"
        lines.append(f"  set {name}: {info['elections']} election(s), primary {primaries}")
    for name, info in sorted(checks.get("writes", {}).get("details", {}).items()):
        missing = sum(m.get("missing", 0) for m in info.get("members", {}).values())
        lines.append(
            f"  writes to {name}: {info['acknowledged']} acknowledged during the rotation "
            f"({info.get('acknowledged_while_a_member_was_down', 0)} while a member was down), "
            f"{info['errors']} failed, {missing} missing on the members afterwards"
        )
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    lines.append(
        "  checks: " + ("all passed (" + ", ".join(sorted(checks)) + ")" if not failed else f"FAILED {failed}")
    )
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
