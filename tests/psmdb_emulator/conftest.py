"""Fixtures for the emulator's conformance tests: lab PKI, real PyKMIP servers, emulated mongods.

Helpers and addresses live in ``psmdb_emulator.lab``. The PyKMIP servers are slow to start, so
the whole session shares them; tests use fresh keys.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

EMULATOR_ROOT = Path(__file__).resolve().parent
for _path in (str(EMULATOR_ROOT), str(EMULATOR_ROOT.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from kmiplab.pki import LabPki, build_lab_pki  # noqa: E402
from kmiplab.server import PyKmipServer, SilentPort  # noqa: E402
from psmdb_emulator.lab import (  # noqa: E402
    CLIENT_CN,
    KMIP1,
    KMIP2,
    KMIP_PORT,
    PROCESS_DEADLINE,
    SILENT,
    WRONG_HOST,
    KmipAdmin,
    KmipLab,
    MongodProcess,
    WrongHostTls,
    start_mongod,
)


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return build_lab_pki(
        tmp_path_factory.mktemp("pki"),
        servers={"kmip1": (KMIP1, "kmip1.test"), "kmip2": (KMIP2, "kmip2.test")},
        clients=(CLIENT_CN, "other-owner"),
        wrong_host_names=("wrong.test", "127.0.30.99"),
    )


@pytest.fixture(scope="session")
def kmip_lab(lab_pki: LabPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmipLab]:
    probe = lab_pki.client(CLIENT_CN)
    servers = {
        label: PyKmipServer(
            tmp_path_factory.mktemp(f"pykmip-{label}"),
            address=address,
            port=KMIP_PORT,
            server_cert=lab_pki.server(label),
            ca_file=lab_pki.ca.cert,
            probe_client=probe,
            start_timeout=PROCESS_DEADLINE,
        )
        for label, address in (("kmip1", KMIP1), ("kmip2", KMIP2))
    }
    silent = SilentPort(SILENT, KMIP_PORT)
    wrong_host = WrongHostTls(WRONG_HOST, KMIP_PORT, lab_pki.bad.wrong_host_server)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for started in [pool.submit(server.start) for server in servers.values()]:
                started.result()
        yield KmipLab(lab_pki, servers)
    finally:
        for server in servers.values():
            server.stop()
        silent.stop()
        wrong_host.stop()


@pytest.fixture
def kmip_admin(kmip_lab: KmipLab) -> KmipAdmin:
    return KmipAdmin(kmip_lab)


@pytest.fixture
def mongod(tmp_path: Path) -> Iterator[Callable[..., MongodProcess]]:
    """Start emulated mongods (see ``start_mongod``); any still running at teardown is killed."""
    started: list[MongodProcess] = []

    def start(
        *args: str,
        db_path: Path | None = None,
        with_db_path: bool = True,
        with_server: bool = False,
        env: dict[str, str] | None = None,
    ) -> MongodProcess:
        handle = start_mongod(
            tmp_path, len(started), *args, db_path=db_path, with_db_path=with_db_path, with_server=with_server, env=env
        )
        started.append(handle)
        return handle

    yield start
    for handle in started:
        if handle.process.poll() is None:
            handle.process.kill()
            handle.process.wait(timeout=30)
