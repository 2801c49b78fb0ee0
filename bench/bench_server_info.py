# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_server_info over silent and live servers: concurrent check vs one after another.

Two real PyKMIP servers (127.0.20.201, .202) and ``--silent`` silent ports (127.0.20.203...,
accept TCP and never answer: a site whose KMIP servers hang) listed first, all on port 5696,
connect_timeout_ms 2000. In the same run, with the same client and settings, the module's
probe (``_kmip.probe.probe_all``: one thread per server) is timed against probing the same
servers one after another (``probe_server`` in a loop). Each silent server costs a full
timeout one after another, but all of them together cost one timeout concurrently: with one
silent server the ratio is about 1, with N about N. One unmeasured warm-up probe runs first.
Then the module itself runs once through ansible-playbook, to show the end-to-end time.

    PYTHONPATH=.build/collections:tests .venv/bin/python bench/bench_server_info.py [--repeat 3] [--silent 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from _common import BENCH_NET, header, write_results

from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KmipClient
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.probe import ServerReport, probe_all, probe_server
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import KmipSettings
from kmiplab.pki import build_lab_pki
from kmiplab.playbook import run_playbook
from kmiplab.ports import SilentPort
from kmiplab.server import DEFAULT_KMIP_PORT, PyKmipServer

CONNECT_TIMEOUT_MS = 2000


def _close(reports: list[ServerReport]) -> None:
    for report in reports:
        if report.session is not None:
            report.session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each mode (median reported)")
    parser.add_argument("--silent", type=int, default=2, help="silent servers listed before the live ones")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: must be at least 1")
    if not 1 <= args.silent <= 40:
        parser.error("--silent: must be between 1 and 40")

    silent_addresses = [f"{BENCH_NET}.{203 + index}" for index in range(args.silent)]
    first, second = f"{BENCH_NET}.201", f"{BENCH_NET}.202"
    with tempfile.TemporaryDirectory(prefix="bench-server-info-") as tmp_name:
        tmp = Path(tmp_name)
        pki = build_lab_pki(
            tmp / "pki",
            servers={"s1": (first,), "s2": (second,)},
            clients=("mongod1",),
            other_ca_server_names=(f"{BENCH_NET}.250",),
        )
        servers = [
            PyKmipServer(
                tmp / label,
                address=address,
                server_cert=pki.server(label),
                ca_file=pki.ca.cert,
                probe_client=pki.client("mongod1"),
            )
            for label, address in (("s1", first), ("s2", second))
        ]
        try:
            # start both at once: a PyKMIP start is mostly its imports
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(PyKmipServer.start, servers))
            with contextlib.ExitStack() as silent_ports:
                for address in silent_addresses:
                    silent_ports.enter_context(SilentPort(address, DEFAULT_KMIP_PORT))
                settings = KmipSettings(
                    server_name=[*silent_addresses, first, second],
                    port=DEFAULT_KMIP_PORT,
                    server_ca_file=str(pki.ca.cert),
                    client_certificate_file=str(pki.client("mongod1").pem),
                    connect_timeout_ms=CONNECT_TIMEOUT_MS,
                )
                client = KmipClient(settings)
                _close(probe_all(client))  # warm-up: imports, TLS context, server caches
                concurrent_s: list[float] = []
                sequential_s: list[float] = []
                outcome: list[bool] = []
                for _ in range(args.repeat):
                    start = time.monotonic()
                    reports = probe_all(client)
                    concurrent_s.append(time.monotonic() - start)
                    outcome = [r.ok for r in reports]
                    _close(reports)
                    start = time.monotonic()
                    reports = [probe_server(client, endpoint) for endpoint in client.endpoints]
                    sequential_s.append(time.monotonic() - start)
                    _close(reports)

                play = f"""
- name: bench kmip_server_info
  hosts: localhost
  gather_facts: false
  tasks:
    - name: kmip_server_info over every server
      kmipops.psmdb.kmip_server_info:
        server_name: {settings.server_name}
        port: {DEFAULT_KMIP_PORT}
        server_ca_file: {pki.ca.cert}
        client_certificate_file: {pki.client("mongod1").pem}
        connect_timeout_ms: {CONNECT_TIMEOUT_MS}
"""
                start = time.monotonic()
                result = run_playbook(play, workdir=tmp / "play")
                playbook_s = time.monotonic() - start
        finally:
            for server in servers:
                server.stop()

    module = result.task("kmip_server_info over every server") if result.tasks else None
    concurrent_median = statistics.median(concurrent_s)
    sequential_median = statistics.median(sequential_s)
    lines = header("kmip_server_info: concurrent vs sequential server checks")
    lines += [
        f"servers: {', '.join(silent_addresses)} (silent), {first}, {second} port {DEFAULT_KMIP_PORT}; "
        f"connect_timeout_ms {CONNECT_TIMEOUT_MS}; repeat {args.repeat}",
        f"server ok (in order): {outcome}",
        f"concurrent (probe_all), s:          {', '.join(f'{v:.2f}' for v in concurrent_s)}  "
        f"median {concurrent_median:.2f}",
        f"one after another (probe_server), s: {', '.join(f'{v:.2f}' for v in sequential_s)}  "
        f"median {sequential_median:.2f}",
        f"ratio sequential/concurrent (median): {sequential_median / concurrent_median:.2f}",
        "",
        f"module through ansible-playbook: rc {result.rc}, wall {playbook_s:.1f} s (Ansible start-up included)",
    ]
    if module is not None:
        lines.append(
            f"  task status {module.status}; ok={module.result.get('ok')}; "
            f"selected_server={module.result.get('selected_server')}"
        )
        for problem in module.result.get("problems") or []:
            lines.append(f"  problem: {problem}")
    elif result.rc != 0:
        lines.append(result.explain())
    write_results("bench_server_info", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
