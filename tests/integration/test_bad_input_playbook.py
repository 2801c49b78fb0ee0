# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Malformed input through ansible-playbook: every module, every option, the filter and a role.

One playbook run (-vvv) holds one task per option of every module, with the first bad value of
tests/unit/utils/bad_input.py for it (the unit tests run every value of that table in-process),
each with ``ignore_errors``. For every case: the task failed, its message names the option, there is no
traceback and no "Module failed", and the whole -vvv output holds no secret; nothing changed on
disk. Addresses: ``<net>.80``-``.89`` of the integration-kmip net (docs/DEVELOPMENT.md); nothing
listens there except this file's own plain TCP echo service on ``.80``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kmiplab.pki import LabPki
from kmiplab.playbook import PlaybookResult
from kmiplab.ports import port_is_free
from unit.utils.bad_input import KMIP_MODULES, SECRET, bad_input_cases

ECHO_OCTET = 80
NOBODY_OCTET = 81


class EchoService:
    """A plain TCP service that echoes what it reads: a TLS ClientHello comes back as is."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self._socket = socket.create_server((address, port), reuse_port=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._socket.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection, contextlib.suppress(OSError):
                connection.settimeout(5)
                data = connection.recv(4096)
                connection.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def echo_service(kmiplab_net: str, kmip_port: int) -> Iterator[EchoService]:
    service = EchoService(f"{kmiplab_net}.{ECHO_OCTET}", kmip_port)
    try:
        yield service
    finally:
        service.close()


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def valid_args(module: str, files: dict[str, str], nobody: str, kmip_port: int) -> dict[str, Any]:
    """Arguments that pass validation and point at an address where nothing listens."""
    if module in KMIP_MODULES or module == "mongod_kmip_config":
        args: dict[str, Any] = {
            "server_name": [nobody],
            "port": kmip_port,
            "server_ca_file": files["ca"],
            "client_certificate_file": files["client"],
            "connect_timeout_ms": 1000,
        }
        if module == "kmip_key":
            args["name"] = "bad-input"
        if module == "kmip_key_info":
            args["names"] = ["bad-input"]
        if module == "mongod_kmip_config":
            args.update(path=files["conf"], service_user="root")
        return args
    if module == "mongod_rotate_master_key":
        return {"config": files["conf"], "binary": "/nonexistent/mongod", "new_key_identifier": "k1"}
    if module == "mongod_dbpath":
        return {"state": "set_aside", "config": files["conf"], "service_name": ""}
    args = {"login_host": nobody, "login_port": 27017, "timeout_ms": 500}
    if module in ("mongod_encryption_info", "mongod_conversion_info"):
        args["config"] = files["conf"]
    return args


def one_case_per_option() -> list[tuple[str, Any, Any]]:
    """The first bad value of every option of every module: the whole breadth of the table in one
    playbook that stays fast (every value of the table runs in-process in the unit tests)."""
    seen: set[tuple[str, str]] = set()
    picked = []
    for module, option, value in bad_input_cases():
        if (module, option) not in seen:
            seen.add((module, option))
            picked.append((module, option, value))
    return picked


def build_playbook(cases: list[dict[str, Any]]) -> str:
    """One task per case; the bad value comes from the extra vars (JSON keeps NUL bytes and big ints)."""
    tasks = []
    for index, case in enumerate(cases):
        args = {key: value for key, value in case["args"].items() if key != case["option"]}
        args[case["option"]] = f"{{{{ cases[{index}].value }}}}"
        tasks.append({"name": f"case {index}", f"kmipops.psmdb.{case['module']}": args, "ignore_errors": True})
    return json.dumps([{"name": "Bad input", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], indent=1)


def test_every_bad_input_fails_naming_the_option(
    run_playbook: Callable[..., PlaybookResult],
    pki: LabPki,
    kmiplab_net: str,
    kmip_port: int,
    tmp_path: Path,
) -> None:
    nobody = f"{kmiplab_net}.{NOBODY_OCTET}"
    assert port_is_free(nobody, kmip_port) and port_is_free(nobody, 27017)
    data = tmp_path / "data"
    data.mkdir()
    conf = data / "mongod.conf"
    conf.write_text(f"storage:\n  dbPath: {data / 'db'}\nnet:\n  port: 27017\n")
    files = {"ca": str(pki.ca.cert), "client": str(pki.client("mongod1").pem), "conf": str(conf)}
    cases = []
    for module, option, value in one_case_per_option():
        args = valid_args(module, files, nobody, kmip_port)
        if option == "client_certificate_password":
            args["client_certificate_file"] = str(pki.encrypted_client.pem)
        cases.append({"module": module, "option": option, "value": value, "args": args})
    before = tree_digest(data)

    result = run_playbook(
        build_playbook(cases),
        extra_vars={"cases": cases},
        verbosity=3,
        timeout=900,
        env={"ANSIBLE_PIPELINING": "1"},
    )

    output = result.stdout + result.stderr
    assert SECRET not in output, "the dummy secret appears in the -vvv output"
    results = {t.task: t for t in result.tasks}
    wrong = []
    for index, case in enumerate(cases):
        task = results.get(f"case {index}")
        label = f"{case['module']} {case['option']}={case['value']!r}"
        if task is None:
            wrong.append(f"{label}: no result")
            continue
        msg = str(task.result.get("msg", ""))
        text = json.dumps(task.result)
        if not task.failed:
            wrong.append(f"{label}: did not fail ({task.status})")
        elif case["option"] not in msg:
            wrong.append(f"{label}: message does not name the option: {msg[:300]}")
        elif "Traceback" in msg or "Module failed" in msg or "internal_error" in text:
            wrong.append(f"{label}: crashed: {msg[:300]}")
        elif task.result.get("error_kind") not in (None, "invalid_option"):
            wrong.append(f"{label}: failed late ({task.result.get('error_kind')}): {msg[:300]}")
    assert not wrong, f"{len(wrong)} of {len(cases)} cases mishandled:\n" + "\n".join(wrong)
    assert len(cases) >= 100
    assert tree_digest(data) == before, "a failed task changed files"


ROLE_AND_FILTER = """
- name: Bad input to the roles and the filter
  hosts: localhost
  gather_facts: false
  tasks:
    # a failure inside an included role is not ignored by ignore_errors on the include: rescue it
    - name: role mongod_member, tasks_from status.yml, mongod_member_tls not a boolean
      block:
        - name: status.yml
          ansible.builtin.include_role:
            name: kmipops.psmdb.mongod_member
            tasks_from: status.yml
          vars:
            mongod_member_tls: maybe
            mongod_member_login_host: "{{ nobody }}"
      rescue:
        - name: refused as expected, status
          ansible.builtin.debug:
            msg: refused
    - name: role mongod_member, tasks_from stepdown.yml, step-down seconds not a number
      block:
        - name: stepdown.yml
          ansible.builtin.include_role:
            name: kmipops.psmdb.mongod_member
            tasks_from: stepdown.yml
          vars:
            mongod_member_step_down_secs: soon
            mongod_member_login_host: "{{ nobody }}"
      rescue:
        - name: refused as expected, stepdown
          ansible.builtin.debug:
            msg: refused
    - name: role mongod_member, tasks_from restart.yml, wait timeout not a number
      block:
        - name: restart.yml
          ansible.builtin.include_role:
            name: kmipops.psmdb.mongod_member
            tasks_from: restart.yml
          vars:
            mongod_member_wait_timeout: forever
            mongod_member_login_host: "{{ nobody }}"
      rescue:
        - name: refused as expected, restart
          ansible.builtin.debug:
            msg: refused
    - name: filter indent out of range
      ansible.builtin.debug:
        msg: "{{ opts | kmipops.psmdb.kmip_security(output='yaml', indent=0) }}"
      ignore_errors: true
    - name: filter connect_timeout_ms beyond a 32-bit int
      ansible.builtin.debug:
        msg: "{{ opts | combine({'connect_timeout_ms': 2147483648}) | kmipops.psmdb.kmip_security }}"
      ignore_errors: true
    - name: plain TCP service on the KMIP port
      kmipops.psmdb.kmip_server_info:
        server_name: ["{{ echo }}"]
        port: "{{ kmip_port }}"
        server_ca_file: "{{ ca }}"
        client_certificate_file: "{{ client }}"
        connect_timeout_ms: 3000
      ignore_errors: true
"""


def test_roles_filter_and_a_plain_tcp_service(
    run_playbook: Callable[..., PlaybookResult],
    pki: LabPki,
    kmiplab_net: str,
    kmip_port: int,
    echo_service: EchoService,
) -> None:
    result = run_playbook(
        ROLE_AND_FILTER,
        extra_vars={
            "nobody": f"{kmiplab_net}.{NOBODY_OCTET}",
            "opts": {"server_name": ["k1"], "client_certificate_file": "/c"},
            "echo": echo_service.address,
            "kmip_port": kmip_port,
            "ca": str(pki.ca.cert),
            "client": str(pki.client("mongod1").pem),
        },
        timeout=300,
    )
    failed = [t for t in result.tasks if t.failed]
    by_name = {t.task.split(" : ")[-1]: t for t in failed}
    for variable in ("mongod_member_tls", "mongod_member_step_down_secs", "mongod_member_wait_timeout"):
        matching = [t for t in failed if variable in str(t.result.get("msg", ""))]
        assert matching, f"no failure names {variable}: {result.explain()}"
        assert all(t.action.endswith("validate_argument_spec") for t in matching), result.explain()
    # nothing ran after a refused validation: no module of the role was called
    assert not [t for t in result.tasks if "mongod_member_" in t.action], result.explain()
    assert len([t for t in result.tasks if t.task.startswith("refused as expected")]) == 3, result.explain()
    assert "indent" in str(by_name["filter indent out of range"].result.get("msg")), result.explain()
    assert "connect_timeout_ms" in str(by_name["filter connect_timeout_ms beyond a 32-bit int"].result.get("msg"))
    plain = by_name["plain TCP service on the KMIP port"].result
    kinds = {a.get("error_kind") for a in plain.get("attempts", [])} | {
        s.get("error_kind") for s in plain.get("servers", []) if isinstance(s, dict)
    }
    assert "not_kmip" in kinds or "not_kmip" in json.dumps(plain), json.dumps(plain)[:2000]
    assert "client_certificate_file" not in str(plain.get("msg")), plain.get("msg")
