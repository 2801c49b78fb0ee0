# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the test lab itself: PKI files, a real PyKMIP server, bad ports, the playbook runner."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID
from kmip.core import enums
from kmip.pie.exceptions import KmipOperationFailure

from kmiplab.client import HostnameMismatchError, check_peer_hostname, key_state, lab_client, register_aes_key
from kmiplab.pki import LabPki
from kmiplab.ports import PlainTcpPort, SilentPort, wait_for
from kmiplab.process_group import kill_group, live_members
from kmiplab.server import SHARED_POLICY_NAME, PyKmipServer, ServerStartError

# -- PKI ------------------------------------------------------------------------------------------


def _pem_blocks(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("-----BEGIN ")]


def test_key_files_are_private_and_client_pem_holds_key_and_chain(pki: LabPki) -> None:
    key_files = [pki.ca.key, pki.other_ca.key, *(s.key for s in pki.servers.values())]
    key_files += [c.pem for c in pki.clients.values()] + [pki.encrypted_client.pem]
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    client = pki.client("mongod1")
    assert _pem_blocks(client.pem) == [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----",
    ]
    leaf = x509.load_pem_x509_certificate(client.cert.read_bytes())
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "mongod1"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_cert_names_ip_and_dns(pki: LabPki, kmiplab_net: str) -> None:
    cert = x509.load_pem_x509_certificate(pki.server("kmip1").cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [f"{kmiplab_net}.1"]
    assert san.get_values_for_type(x509.DNSName) == ["kmip1.test"]


def test_encrypted_client_key_needs_its_password_which_is_never_in_repr(pki: LabPki) -> None:
    client = pki.encrypted_client
    assert client.password
    data = client.pem.read_bytes()
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    with pytest.raises(TypeError):  # encrypted and no password given
        load_pem_private_key(data, password=None)
    load_pem_private_key(data, password=client.password.encode())
    assert client.password not in repr(client)
    assert client.password not in repr(pki)


def test_bad_variants_are_bad_in_the_intended_way(pki: LabPki) -> None:
    now = datetime.datetime.now(datetime.UTC)
    expired = x509.load_pem_x509_certificate(pki.bad.expired_client.cert.read_bytes())
    assert expired.not_valid_after_utc < now
    no_eku = x509.load_pem_x509_certificate(pki.bad.no_eku_client.cert.read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        no_eku.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    server_only = x509.load_pem_x509_certificate(pki.bad.server_auth_only_client.cert.read_bytes())
    eku = server_only.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in eku
    assert not any("PRIVATE KEY" in block for block in _pem_blocks(pki.bad.client_without_key.pem))
    other = x509.load_pem_x509_certificate(pki.bad.other_ca_server.cert.read_bytes())
    assert other.issuer == pki.other_ca.certificate.subject
    assert pki.bad.other_ca_server.issuer_ca == pki.other_ca.cert


def test_peer_hostname_check_is_exact() -> None:
    peercert = {"subjectAltName": (("IP Address", "127.0.20.1"), ("DNS", "kmip1.test"))}
    check_peer_hostname(peercert, "127.0.20.1")
    check_peer_hostname(peercert, "KMIP1.test")
    for wrong in ("127.0.20.2", "kmip2.test", "kmip1.test.evil"):
        with pytest.raises(HostnameMismatchError):
            check_peer_hostname(peercert, wrong)


# -- the PyKMIP server ------------------------------------------------------------------------------


def test_server_speaks_kmip_1_0_register_activate_getattributes_get(pki: LabPki, kmip_server: PyKmipServer) -> None:
    mark = kmip_server.log_offset()
    with lab_client(kmip_server, pki.client("mongod1")) as kmip:
        uid = register_aes_key(kmip)
        assert key_state(kmip, uid) == "PRE_ACTIVE"
        kmip.activate(uid)
        assert key_state(kmip, uid) == "ACTIVE"
        key = kmip.get(uid)
    assert key.key_format_type == enums.KeyFormatType.RAW
    assert len(key.value) == 32
    assert kmip_server.operations(since=mark) == ["Register", "GetAttributes", "Activate", "GetAttributes", "Get"]
    assert set(kmip_server.client_identities(since=mark)) == {"mongod1"}
    # INFO level: the key bytes must not be in the log (DEBUG would write them)
    assert key.value.hex() not in kmip_server.log_text()
    assert kmip_server.log_path.read_bytes().find(key.value) == -1


def test_key_of_one_identity_is_invisible_to_another_unless_shared_policy(
    pki: LabPki, kmip_server: PyKmipServer
) -> None:
    with lab_client(kmip_server, pki.client("mongod1")) as owner:
        private_uid = register_aes_key(owner)
        shared_uid = register_aes_key(owner, operation_policy_name=SHARED_POLICY_NAME)
        owner.activate(shared_uid)
    with lab_client(kmip_server, pki.client("mongod2")) as other:
        with pytest.raises(KmipOperationFailure) as denied:
            other.get(private_uid)
        assert denied.value.reason == enums.ResultReason.PERMISSION_DENIED
        assert key_state(other, shared_uid) == "ACTIVE"
        assert len(other.get(shared_uid).value) == 32


def _handshake(server: PyKmipServer, context: ssl.SSLContext, server_name: str | None = None) -> None:
    """A full TLS 1.2 handshake: the server checks our certificate before sending its Finished,
    so a rejection raises here."""
    with (
        socket.create_connection((server.address, server.port), timeout=60) as raw,
        context.wrap_socket(raw, server_hostname=server_name or server.address),
    ):
        pass


def test_client_from_other_ca_is_rejected_in_handshake(pki: LabPki, kmip_server: PyKmipServer) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _handshake(kmip_server, kmip_server.tls_context(pki.bad.other_ca_client))


def test_client_trusting_other_ca_rejects_lab_server(pki: LabPki, kmip_server: PyKmipServer) -> None:
    context = kmip_server.tls_context(pki.client("mongod1"), cafile=pki.other_ca.cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(kmip_server, context)


def test_client_without_client_auth_eku_is_rejected_in_handshake(pki: LabPki, kmip_server: PyKmipServer) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)) as rejected:
        _handshake(kmip_server, kmip_server.tls_context(pki.bad.server_auth_only_client))
    assert "UNSUPPORTED_CERTIFICATE" in str(rejected.value).upper() or isinstance(rejected.value, ConnectionError)


def test_client_without_any_eku_is_refused_by_pykmip(pki: LabPki, kmip_server: PyKmipServer) -> None:
    mark = kmip_server.log_offset()
    with lab_client(kmip_server, pki.bad.no_eku_client) as kmip, pytest.raises(KmipOperationFailure) as refused:
        register_aes_key(kmip)
    assert refused.value.reason == enums.ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
    assert wait_for(lambda: "extended key usage extension is missing" in kmip_server.log_text()[mark:], timeout=120)
    assert kmip_server.operations(since=mark) == []


def test_expired_client_is_rejected_in_handshake(pki: LabPki, kmip_server: PyKmipServer) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _handshake(kmip_server, kmip_server.tls_context(pki.bad.expired_client))


def test_bad_server_variants_fail_chain_and_hostname_checks(
    pki: LabPki, kmip_server_other_ca: PyKmipServer, kmip_server_wrong_host: PyKmipServer
) -> None:
    trusting_lab_ca = kmip_server_other_ca.tls_context(pki.client("mongod1"), cafile=pki.ca.cert)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _handshake(kmip_server_other_ca, trusting_lab_ca)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(kmip_server_wrong_host, kmip_server_wrong_host.tls_context(pki.client("mongod1")))
    # what kmiplab's own client does with it
    with pytest.raises(HostnameMismatchError), lab_client(kmip_server_wrong_host, pki.client("mongod1")):
        pass


def _own_server(kind: type[PyKmipServer], pki: LabPki, workdir: Path, address: str, **kwargs: Any) -> PyKmipServer:
    """A server of its own (not a session fixture), to stop within the test."""
    return kind(
        workdir,
        address=address,
        server_cert=pki.server("kmip1"),
        ca_file=pki.ca.cert,
        probe_client=pki.client("mongod1"),
        **kwargs,
    )


def _assert_stopped_for_good(server: PyKmipServer, pid: int) -> None:
    """Right after stop(), without polling: no process of the group runs, the port is free."""
    assert not server.running
    assert live_members(pid) == []
    with socket.socket() as rebind:
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind((server.address, server.port))


def test_server_stop_ends_every_process_and_frees_the_port(pki: LabPki, tmp_path: Path, kmiplab_net: str) -> None:
    server = _own_server(PyKmipServer, pki, tmp_path / "srv", f"{kmiplab_net}.20", start_timeout=180)
    with server:
        pid = server.pid
        assert pid is not None
        assert len(live_members(pid)) >= 2  # PyKMIP forks helper processes
        assert server.config_path.read_text().count("logging_level=INFO") == 1
        assert f"database_path={server.database_path}" in server.config_path.read_text()
    _assert_stopped_for_good(server, pid)


# PyKMIP's process tree, reduced to what made stop() race: the leader listens and dies at the
# first SIGTERM; its forked helper shares the listening socket, ignores SIGTERM (as PyKMIP's
# helpers outlast it) and holds BALLAST_MIB of touched memory, so that after SIGKILL it takes a
# while to die: the kernel frees a dying process's memory before it closes its files.
BALLAST_MIB = 512
_HELPER_OUTLIVES_LEADER = r"""
import os, signal, socket, sys, time
address, port, ready, ballast_mib = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
listener = socket.create_server((address, port))
read_end, write_end = os.pipe()
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ballast = b"\x01" * (ballast_mib << 20)
    os.write(write_end, b"1")
    while True:
        time.sleep(60)
os.read(read_end, 1)
open(ready, "w").close()
while True:
    time.sleep(60)
"""


class _HelperOutlivesLeader(PyKmipServer):
    """PyKmipServer's own start() and stop() around the process tree above."""

    def _command(self) -> list[str]:
        ready = str(self.workdir / "ready")
        return [sys.executable, "-c", _HELPER_OUTLIVES_LEADER, self.address, str(self.port), ready, str(BALLAST_MIB)]

    def _wait_ready(self) -> None:
        if not wait_for(lambda: (self.workdir / "ready").exists(), timeout=self.start_timeout):
            raise ServerStartError(f"{self.endpoint}: the stand-in did not start; see {self.stderr_path}")


def test_server_stop_waits_for_a_helper_that_dies_after_the_leader(
    pki: LabPki, tmp_path: Path, kmiplab_net: str
) -> None:
    server = _own_server(
        _HelperOutlivesLeader, pki, tmp_path / "srv", f"{kmiplab_net}.21", start_timeout=120, stop_grace=0.2
    )
    with server:
        pid = server.pid
        assert pid is not None
        assert len(live_members(pid)) == 2
    _assert_stopped_for_good(server, pid)


_MAIN_THREAD_EXITS = r"""
import ctypes, sys, threading, time

def worker():
    open(sys.argv[1], "w").close()
    while True:
        time.sleep(60)

threading.Thread(target=worker).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_live_members_counts_a_process_whose_main_thread_has_exited(tmp_path: Path) -> None:
    """/proc/<pid>/stat then says Z, yet the process still runs (and may hold a socket)."""
    ready = tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", _MAIN_THREAD_EXITS, str(ready)], start_new_session=True)
    try:

        def leader_thread_is_zombie() -> bool:
            stat_line = Path(f"/proc/{process.pid}/stat").read_text()
            return ready.exists() and stat_line.rsplit(")", 1)[1].split()[0] == "Z"

        assert wait_for(leader_thread_is_zombie, timeout=60)
        assert live_members(process.pid) == [process.pid]
    finally:
        kill_group(process.pid)
        process.wait(timeout=10)
    assert live_members(process.pid) == []


# -- misbehaving ports --------------------------------------------------------------------------------


def test_silent_port_accepts_and_never_answers(silent_port: SilentPort) -> None:
    before = silent_port.connections_accepted
    with socket.create_connection((silent_port.address, silent_port.port), timeout=5) as conn:
        assert wait_for(lambda: silent_port.connections_accepted == before + 1, timeout=5)
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(1)


def test_plain_tcp_port_breaks_a_tls_handshake(pki: LabPki, plain_tcp_port: PlainTcpPort) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    with (
        socket.create_connection((plain_tcp_port.address, plain_tcp_port.port), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        context.wrap_socket(raw, server_hostname=plain_tcp_port.address)


def test_closed_address_refuses(closed_address: str, kmip_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((closed_address, kmip_port), timeout=5).close()


# -- the playbook runner ------------------------------------------------------------------------------

PLAYBOOK = """
- name: kmiplab runner check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: a change
      ansible.builtin.command: "true"
    - name: a secret
      ansible.builtin.debug:
        msg: "{{ secret }}"
      no_log: true
    - name: python is the venv's
      ansible.builtin.command: "{{ ansible_python_interpreter }} -c 'import kmip, sys; print(sys.prefix)'"
      changed_when: false
    - name: a failure that is ignored
      ansible.builtin.fail:
        msg: expected
      ignore_errors: true
"""


def test_run_playbook_returns_task_results_and_hides_no_log(run_playbook) -> None:  # type: ignore[no-untyped-def]
    secret = "kmiplab-" + os.urandom(8).hex()
    result = run_playbook(PLAYBOOK, extra_vars={"secret": secret})
    assert result.rc == 0, result.explain()
    assert [t.status for t in result.tasks] == ["changed", "ok", "ok", "ignored"]
    assert result.task("a change").changed
    assert result.task("a secret").result.get("censored")
    assert result.task("python is the venv's").result["stdout"].strip().endswith(".venv")
    assert result.changed_count() == 1
    assert secret not in result.stdout + result.stderr
    assert secret not in str(result.tasks)
