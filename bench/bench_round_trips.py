# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KMIP round trips and TLS sessions per module run, counted outside the module.

A KMIP-aware proxy (``kmiplab.policy_proxy.KmipPolicyProxy``, 127.0.20.212:5696) sits in front
of a real PyKMIP server (127.0.20.211:5697); the modules are pointed at the proxy, whose address
is in the server certificate, so TLS verification is unchanged. The proxy terminates TLS,
decodes every request with PyKMIP's message classes and counts connections (= TLS sessions)
and requests, including those PyKMIP refuses before logging them (Discover Versions under
KMIP 1.0). A second proxy (127.0.20.213) grants only what PSMDB sends (Register, Activate,
Get, Get Attributes), like a least-privilege HashiCorp Vault KMIP role, and refuses the rest
itself. Each module run is its own playbook, so the counts are per run.

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
from kmiplab.policy_proxy import PSMDB_OPERATIONS, KmipPolicyProxy
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
    backend, front, least = f"{BENCH_NET}.211", f"{BENCH_NET}.212", f"{BENCH_NET}.213"
    key_name = f"bench-{secrets.token_hex(4)}"
    rows: list[tuple[str, int, int, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-round-trips-") as tmp_name:
        tmp = Path(tmp_name)
        pki = build_lab_pki(
            tmp / "pki",
            servers={"kmip": (backend, front, least)},
            clients=("mongod1",),
            other_ca_server_names=(f"{BENCH_NET}.250",),
        )
        connection = {
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
        with server:

            def proxy(address: str, allowed: frozenset[Any] | None) -> KmipPolicyProxy:
                return KmipPolicyProxy(
                    address,
                    DEFAULT_KMIP_PORT,
                    upstream=server,
                    server_cert=pki.server("kmip"),
                    ca_file=pki.ca.cert,
                    identities=pki.clients.values(),
                    allowed=allowed,
                )

            with proxy(front, None) as counting, proxy(least, PSMDB_OPERATIONS) as psmdb_only:
                with_key = {"key_identifier": None}  # filled in with the key kmip_key creates
                runs: list[tuple[KmipPolicyProxy, str, str, dict[str, Any]]] = [
                    (counting, "kmip_server_info", "kmip_server_info (no key)", {}),
                    (counting, "kmip_key", "kmip_key present (new key)", {"name": key_name}),
                    (counting, "kmip_key", "kmip_key present (idempotent)", {"name": key_name}),
                    (counting, "kmip_key_info", "kmip_key_info (by name)", {"names": [key_name]}),
                    (counting, "kmip_server_info", "kmip_server_info (key_identifier)", with_key),
                    (psmdb_only, "kmip_server_info", "  same, PSMDB-only KMS (no key)", {}),
                    (psmdb_only, "kmip_server_info", "  same, PSMDB-only KMS (key_identifier)", with_key),
                ]
                key_identifier: str | None = None
                for index, (kms, module, label, options) in enumerate(runs):
                    if "key_identifier" in options:
                        options = {**options, "key_identifier": key_identifier}
                    mark, sessions_before = kms.mark(), kms.connections_accepted
                    options = {**connection, "server_name": [kms.address], **options}
                    result: PlaybookResult = run_playbook(_play(module, options), workdir=tmp / f"play-{index}")
                    task = result.task(module)  # a failed run is a row too: its status says so
                    if result.rc != 0 and not task.failed:
                        raise SystemExit(f"{label} failed:\n{result.explain()}")
                    key_identifier = key_identifier or task.result.get("key_identifier")
                    requests = kms.requests[mark:]
                    rows.append(
                        (
                            label,
                            kms.connections_accepted - sessions_before,
                            len(requests),
                            task.status,
                            _summary([(name, r.allowed) for r in requests for name in r.operations]),
                        )
                    )

    lines = header("KMIP round trips and TLS sessions per module run (PyKMIP behind a KMIP-aware counting proxy)")
    lines.append(f"{'module run':40} {'TLS sessions':>12} {'KMIP requests':>13}  status   operations")
    for label, sessions, count, status, summary in rows:
        lines.append(f"{label:40} {sessions:>12} {count:>13}  {status:8} {summary}")
    lines += [
        "",
        "Requests are counted by the proxy, which decodes each one; (refused) marks those a KMS refused.",
        "mongod itself, for comparison (psmdb-kmip.md section 2): first start Register+Activate in one",
        "session; restart GetAttributes(State)+Get in one session.",
    ]
    write_results("bench_round_trips", lines)
    return 0


def _summary(operations: list[tuple[str, bool]]) -> str:
    counts = Counter(f"{name}{'' if allowed else ' (refused)'}" for name, allowed in operations)
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items()) or "(none)"


if __name__ == "__main__":
    raise SystemExit(main())
