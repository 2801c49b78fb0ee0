# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KMIP round trips and TLS sessions per module run, counted outside the module.

A counting TCP proxy (127.0.20.212:5696) sits in front of a real PyKMIP server
(127.0.20.211:5697); the modules are pointed at the proxy, whose address is in the server
certificate, so TLS verification is unchanged. The proxy counts connections (= TLS sessions,
the traffic stays encrypted); the KMIP operations are read from the PyKMIP server's INFO log
("Processing operation: X", one line per request). Each module run is its own playbook, so
the counts are per run.

    PYTHONPATH=.build/collections:tests .venv/bin/python bench/bench_round_trips.py
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _common import BENCH_NET, header, write_results

from kmiplab.pki import build_lab_pki
from kmiplab.playbook import PlaybookResult, run_playbook
from kmiplab.ports import CountingTcpProxy
from kmiplab.server import DEFAULT_KMIP_PORT, PyKmipServer

BACKEND_PORT = DEFAULT_KMIP_PORT + 1


def _play(module: str, options: dict[str, Any]) -> str:
    lines = [
        "- name: bench round trips",
        "  hosts: localhost",
        "  gather_facts: false",
        "  tasks:",
        f"    - name: {module}",
        f"      kmipops.psmdb.{module}:",
    ]
    # JSON is valid YAML: strings and lists come out quoted and escaped
    lines += [f"        {key}: {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    backend, front = f"{BENCH_NET}.211", f"{BENCH_NET}.212"
    key_name = f"bench-{secrets.token_hex(4)}"
    rows: list[tuple[str, int, str, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-round-trips-") as tmp_name:
        tmp = Path(tmp_name)
        pki = build_lab_pki(
            tmp / "pki",
            servers={"kmip": (backend, front)},
            clients=("mongod1",),
            other_ca_server_names=(f"{BENCH_NET}.250",),
        )
        connection = {
            "server_name": [front],
            "port": DEFAULT_KMIP_PORT,
            "server_ca_file": str(pki.ca.cert),
            "client_certificate_file": str(pki.client("mongod1").pem),
            # counts, not times: a generous timeout keeps a saturated machine from failing the run
            "connect_timeout_ms": 60000,
        }
        server = PyKmipServer(
            tmp / "server",
            address=backend,
            port=BACKEND_PORT,
            server_cert=pki.server("kmip"),
            ca_file=pki.ca.cert,
            probe_client=pki.client("mongod1"),
        )
        with server, CountingTcpProxy(front, (backend, BACKEND_PORT), DEFAULT_KMIP_PORT) as proxy:
            runs: list[tuple[str, str, dict[str, Any]]] = [
                ("kmip_server_info", "kmip_server_info (no key)", {}),
                ("kmip_key", "kmip_key present (new key)", {"name": key_name}),
                ("kmip_key", "kmip_key present (idempotent)", {"name": key_name}),
                ("kmip_key_info", "kmip_key_info (by name)", {"names": [key_name]}),
            ]
            key_identifier: str | None = None
            for index, (module, label, options) in enumerate(runs):
                mark, sessions_before = server.log_offset(), proxy.connections_accepted
                result: PlaybookResult = run_playbook(
                    _play(module, {**connection, **options}), workdir=tmp / f"play-{index}"
                )
                if result.rc != 0:
                    raise SystemExit(f"{label} failed:\n{result.explain()}")
                task = result.task(module)
                key_identifier = key_identifier or task.result.get("key_identifier")
                ops = server.operations(since=mark)
                rows.append((label, proxy.connections_accepted - sessions_before, _summary(ops), len(ops), task.status))
            if key_identifier:
                mark, sessions_before = server.log_offset(), proxy.connections_accepted
                result = run_playbook(
                    _play("kmip_server_info", {**connection, "key_identifier": key_identifier}),
                    workdir=tmp / "play-key",
                )
                if result.rc != 0:
                    raise SystemExit(f"kmip_server_info with key failed:\n{result.explain()}")
                ops = server.operations(since=mark)
                rows.append(
                    (
                        "kmip_server_info (key_identifier)",
                        proxy.connections_accepted - sessions_before,
                        _summary(ops),
                        len(ops),
                        result.task("kmip_server_info").status,
                    )
                )

    lines = header("KMIP round trips and TLS sessions per module run (PyKMIP behind a counting proxy)")
    lines.append(f"{'module run':36} {'TLS sessions':>12} {'KMIP requests':>13}  status   operations")
    for label, sessions, summary, count, status in rows:
        lines.append(f"{label:36} {sessions:>12} {count:>13}  {status:8} {summary}")
    lines += [
        "",
        "mongod itself, for comparison (psmdb-kmip.md section 2): first start Register+Activate in one",
        "session; restart GetAttributes(State)+Get in one session.",
    ]
    write_results("bench_round_trips", lines)
    return 0


def _summary(operations: list[str]) -> str:
    counts = Counter(operations)
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items()) or "(none)"


if __name__ == "__main__":
    raise SystemExit(main())
