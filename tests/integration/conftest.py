# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the integration tests: a test PKI, real PyKMIP servers, bad ports, playbooks.

Addresses. Every endpoint lives on its own loopback address of the network ``kmiplab_net``
(``127.0.20`` by default; set ``KMIPLAB_NET=127.0.21`` to run a second copy of the suite at
the same time) and ALL of them use the same port ``kmip_port`` (5696, like production),
because mongod has one ``security.kmip.port`` for every server in ``serverName``. So a
failover list such as ``[silent_port.address, kmip_server.address]`` is valid mongod config.

    .1  kmip_server             PyKMIP, cert SAN 127.0.20.1 + kmip1.test
    .2  kmip_server2            PyKMIP, cert SAN 127.0.20.2 + kmip2.test (own database)
    .3  silent_port             accepts TCP, never answers (exercises connect_timeout_ms)
    .4  plain_tcp_port          answers plain text and closes (not TLS)
    .5  kmip_server_other_ca    PyKMIP whose cert (SAN .5) is signed by pki.other_ca
    .6  kmip_server_wrong_host  PyKMIP with a lab-CA cert for wrong.test/192.0.2.1 only
    .7  closed_address          nothing listens (connection refused)
    .8  kms_psmdb_only          least-privilege KMS: a KmipPolicyProxy in front of kmip_server that
                                allows only Register, Activate, Get, Get Attributes (what PSMDB sends)
    .9  kms_key_management      the same plus Locate, Revoke, Destroy (what kmip_key adds)
    .20-.99   free for tests that start their own servers (PyKmipServer, SilentPort...), except:
    .40-.49   test_rotation_modules.py: its KMS proxies (policy_proxy)
    .50-.59   test_rotation_modules.py: its emulated mongod members (emulated_member.py)
    .61       test_module_defaults.py: its scripted member
    .70-.79   test_replset_wait.py: its emulated replica set (.70-.72; .79 nothing listens)
    .200-.254 the benchmarks (bench/)

Fixtures (session scope unless said otherwise; servers start lazily, on first use):

``pki`` -> kmiplab.pki.LabPki
    ``pki.ca.cert`` is the CA file to give as ``server_ca_file``; ``pki.client("mongod1")``
    (also mongod2, mongod3) is a mongod identity, ``.pem`` = key + chain for
    ``client_certificate_file``; ``pki.encrypted_client`` has ``.password``;
    ``pki.other_ca.cert`` is an unrelated CA; ``pki.bad.*`` are the negative variants
    (expired_client, no_eku_client, server_auth_only_client, other_ca_client,
    client_without_key, other_ca_server, wrong_host_server).
``kmip_server``, ``kmip_server2``, ``kmip_server_other_ca``, ``kmip_server_wrong_host``
    -> kmiplab.server.PyKmipServer: ``.address``, ``.port``, ``.endpoint``, ``.log_path``,
    ``.operations(since=offset)`` (KMIP operations from the server log),
    ``.client_identities(since=...)``, ``.log_offset()``. Keys registered by one test stay
    on the server for the session: create your own, do not count all keys.
    Every one of them loads the operation policy ``kmiplab-shared`` (SHARED_POLICY_NAME):
    a key registered with Operation Policy Name ``kmiplab-shared`` is usable by every lab
    identity; keys under PyKMIP's ``default`` policy only by their owner (the CN that
    registered them), which is the identity trap mongod falls into.
``silent_port``, ``plain_tcp_port`` -> kmiplab.ports.SilentPort / PlainTcpPort
    (``.address``, ``.port``, ``.connections_accepted``).
``closed_address`` -> str: an address of the net where nothing listens on ``kmip_port``.
``kms_psmdb_only``, ``kms_key_management`` -> kmiplab.policy_proxy.KmipPolicyProxy in front of
    ``kmip_server``, like a HashiCorp Vault KMIP role granted only those operations: anything else
    is answered Operation Failed / Permission Denied by the proxy itself. ``.requests``,
    ``.operations(since=proxy.mark(), allowed=None|True|False)``; it has ``.address``/``.port``
    like a server, so ``kmip_options(servers=[proxy])`` and ``lab_kmip(proxy)`` work. It presents
    the lab identity with the client's CN to PyKMIP, so ownership rules are unchanged.
``policy_proxy`` (function) -> callable(octet, allowed=..., denial_reason=..., close_on_denial=False)
    -> a KmipPolicyProxy on ``<net>.<octet>`` (20-99) in front of ``kmip_server``, stopped after
    the test: for a KMS with other grants or another way of refusing.
``kmip_port`` -> int, ``kmiplab_net`` -> str ("127.0.20").
``kmip_options`` (function) -> callable(servers=None, client="mongod1", **overrides) -> dict
    of the KMIP connection options of the collection's modules (server_name, port,
    server_ca_file, client_certificate_file), ``servers`` being a list of addresses or
    PyKmipServer/SilentPort objects (default: [kmip_server]).
``lab_kmip`` (function) -> callable(server=None, client="mongod1") -> context manager of an
    open PyKMIP ``ProxyKmipClient`` on a lab server, to set up or check server state
    directly (see kmiplab.client: register_aes_key, key_state).
``run_playbook`` (function) -> callable(playbook, extra_vars=None, check=False, diff=False,
    verbosity=0, env=None, timeout=600, python_interpreter=None) -> kmiplab.playbook
    .PlaybookResult with ``.rc``, ``.stdout``, ``.stderr``, ``.tasks`` (TaskResult: play,
    task, action, host, status, result, .changed, .failed), ``.stats``, ``.task(name)``,
    ``.changed_count()``, ``.explain()`` (for assert messages). ``playbook`` is YAML text
    or a path; it runs against ``localhost`` with connection local and this venv's python
    as ``ansible_python_interpreter``, with ANSIBLE_COLLECTIONS_PATH = <repo>/.build/collections
    (the symlink is created when missing). Extra vars travel in a 0600 file.

The PyKMIP servers log at INFO (never DEBUG: it logs key bytes). A PyKMIP server start is
mostly its imports (SQLAlchemy): a few seconds on an idle machine, 60-190 s measured on the
shared 2-core machine at load 30-45, so keep to the session servers where you can and never
assert on timings. KMIPLAB_START_TIMEOUT (default 300 s)
bounds each start.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# kmiplab lives in <repo>/tests; make it importable whatever the rootdir/cwd is
_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from kmiplab.client import lab_client  # noqa: E402
from kmiplab.pki import LabPki, build_lab_pki, issue_server_cert  # noqa: E402
from kmiplab.playbook import PlaybookResult, run_playbook  # noqa: E402
from kmiplab.policy_proxy import KEY_MANAGEMENT_OPERATIONS, PSMDB_OPERATIONS, KmipPolicyProxy  # noqa: E402
from kmiplab.ports import PlainTcpPort, SilentPort, port_is_free  # noqa: E402
from kmiplab.server import DEFAULT_KMIP_PORT, SHARED_POLICY_NAME, PyKmipServer, shared_key_policy  # noqa: E402

SERVER_START_TIMEOUT = float(os.environ.get("KMIPLAB_START_TIMEOUT", "300"))


@pytest.fixture(scope="session")
def kmiplab_net() -> str:
    net = os.environ.get("KMIPLAB_NET", "127.0.20")
    if not net.startswith("127.") or net.count(".") != 2:
        raise pytest.UsageError(f"KMIPLAB_NET: must be the first three octets of a loopback /24, got {net!r}")
    return net


@pytest.fixture(scope="session")
def kmip_port() -> int:
    return int(os.environ.get("KMIPLAB_PORT", str(DEFAULT_KMIP_PORT)))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory, kmiplab_net: str) -> LabPki:
    return build_lab_pki(
        tmp_path_factory.mktemp("kmiplab-pki"),
        servers={
            "kmip1": (f"{kmiplab_net}.1", "kmip1.test"),
            "kmip2": (f"{kmiplab_net}.2", "kmip2.test"),
        },
        other_ca_server_names=(f"{kmiplab_net}.5", "kmip-other-ca.test"),
    )


def _server(
    factory: pytest.TempPathFactory, pki: LabPki, name: str, address: str, port: int, cert_label: str
) -> Iterator[PyKmipServer]:
    certs = {
        "kmip1": pki.servers.get("kmip1"),
        "kmip2": pki.servers.get("kmip2"),
        "other_ca": pki.bad.other_ca_server,
        "wrong_host": pki.bad.wrong_host_server,
    }
    server_cert = certs[cert_label]
    assert server_cert is not None
    server = PyKmipServer(
        factory.mktemp(name),
        address=address,
        port=port,
        server_cert=server_cert,
        ca_file=pki.ca.cert,
        probe_client=pki.client("mongod1"),
        policies={SHARED_POLICY_NAME: shared_key_policy()},
        start_timeout=SERVER_START_TIMEOUT,
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def kmip_server(
    tmp_path_factory: pytest.TempPathFactory, pki: LabPki, kmiplab_net: str, kmip_port: int
) -> Iterator[PyKmipServer]:
    yield from _server(tmp_path_factory, pki, "kmip1", f"{kmiplab_net}.1", kmip_port, "kmip1")


@pytest.fixture(scope="session")
def kmip_server2(
    tmp_path_factory: pytest.TempPathFactory, pki: LabPki, kmiplab_net: str, kmip_port: int
) -> Iterator[PyKmipServer]:
    yield from _server(tmp_path_factory, pki, "kmip2", f"{kmiplab_net}.2", kmip_port, "kmip2")


@pytest.fixture(scope="session")
def kmip_server_other_ca(
    tmp_path_factory: pytest.TempPathFactory, pki: LabPki, kmiplab_net: str, kmip_port: int
) -> Iterator[PyKmipServer]:
    yield from _server(tmp_path_factory, pki, "kmip-other-ca", f"{kmiplab_net}.5", kmip_port, "other_ca")


@pytest.fixture(scope="session")
def kmip_server_wrong_host(
    tmp_path_factory: pytest.TempPathFactory, pki: LabPki, kmiplab_net: str, kmip_port: int
) -> Iterator[PyKmipServer]:
    yield from _server(tmp_path_factory, pki, "kmip-wrong-host", f"{kmiplab_net}.6", kmip_port, "wrong_host")


@pytest.fixture(scope="session")
def silent_port(kmiplab_net: str, kmip_port: int) -> Iterator[SilentPort]:
    with SilentPort(f"{kmiplab_net}.3", kmip_port) as port:
        yield port


@pytest.fixture(scope="session")
def plain_tcp_port(kmiplab_net: str, kmip_port: int) -> Iterator[PlainTcpPort]:
    with PlainTcpPort(f"{kmiplab_net}.4", kmip_port) as port:
        yield port


@pytest.fixture(scope="session")
def closed_address(kmiplab_net: str, kmip_port: int) -> str:
    address = f"{kmiplab_net}.7"
    if not port_is_free(address, kmip_port):
        raise RuntimeError(f"{address}:{kmip_port} is in use; closed_address needs nothing listening there")
    return address


def _policy_proxy(
    directory: Path, pki: LabPki, upstream: PyKmipServer, address: str, port: int, **policy: Any
) -> KmipPolicyProxy:
    label = f"kms-{address.rsplit('.', 1)[1]}"
    server_cert = issue_server_cert(pki.ca, directory, label, (address, f"{label}.test"))
    return KmipPolicyProxy(
        address,
        port,
        upstream=upstream,
        server_cert=server_cert,
        ca_file=pki.ca.cert,
        identities=[*pki.clients.values(), pki.encrypted_client],
        **policy,
    )


@pytest.fixture(scope="session")
def kms_psmdb_only(
    tmp_path_factory: pytest.TempPathFactory, pki: LabPki, kmip_server: PyKmipServer, kmiplab_net: str, kmip_port: int
) -> Iterator[KmipPolicyProxy]:
    directory = tmp_path_factory.mktemp("kms-psmdb-only")
    with _policy_proxy(directory, pki, kmip_server, f"{kmiplab_net}.8", kmip_port, allowed=PSMDB_OPERATIONS) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def kms_key_management(
    tmp_path_factory: pytest.TempPathFactory, pki: LabPki, kmip_server: PyKmipServer, kmiplab_net: str, kmip_port: int
) -> Iterator[KmipPolicyProxy]:
    directory = tmp_path_factory.mktemp("kms-key-management")
    address = f"{kmiplab_net}.9"
    with _policy_proxy(directory, pki, kmip_server, address, kmip_port, allowed=KEY_MANAGEMENT_OPERATIONS) as proxy:
        yield proxy


@pytest.fixture
def policy_proxy(
    tmp_path: Path, pki: LabPki, kmip_server: PyKmipServer, kmiplab_net: str, kmip_port: int
) -> Iterator[Callable[..., KmipPolicyProxy]]:
    started: list[KmipPolicyProxy] = []

    def start(octet: int, **policy: Any) -> KmipPolicyProxy:
        if not 20 <= octet <= 99:
            raise ValueError(f"octet: tests own {kmiplab_net}.20-99, got {octet}")
        proxy = _policy_proxy(tmp_path, pki, kmip_server, f"{kmiplab_net}.{octet}", kmip_port, **policy)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def kmip_options(pki: LabPki, request: pytest.FixtureRequest, kmip_port: int) -> Callable[..., dict[str, Any]]:
    def build(servers: list[Any] | None = None, client: str = "mongod1", **overrides: Any) -> dict[str, Any]:
        if servers is None:
            servers = [request.getfixturevalue("kmip_server")]
        names = [s if isinstance(s, str) else s.address for s in servers]
        options: dict[str, Any] = {
            "server_name": names,
            "port": kmip_port,
            "server_ca_file": str(pki.ca.cert),
            "client_certificate_file": str(pki.client(client).pem),
        }
        options.update(overrides)
        return options

    return build


@pytest.fixture
def lab_kmip(pki: LabPki, request: pytest.FixtureRequest) -> Callable[..., contextlib.AbstractContextManager[Any]]:
    def open_client(server: PyKmipServer | None = None, client: str = "mongod1") -> Any:
        return lab_client(server or request.getfixturevalue("kmip_server"), pki.client(client))

    return open_client


@pytest.fixture(name="run_playbook")
def run_playbook_fixture(tmp_path: Path) -> Callable[..., PlaybookResult]:
    counter = iter(range(1, 1000))

    def run(playbook: str | os.PathLike[str], **kwargs: Any) -> PlaybookResult:
        kwargs.setdefault("workdir", tmp_path / f"play-{next(counter)}")
        return run_playbook(playbook, **kwargs)

    return run
