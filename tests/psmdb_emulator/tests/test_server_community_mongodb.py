"""community.mongodb's mongodb_info, mongodb_status, mongodb_stepdown and mongodb_replicaset (check mode),
run through ansible-playbook against an emulated 3-member set on 127.0.40.51-53.

The collections come from .build/test-collections (`make test-collections`); the playbook runner is
tests/kmiplab/playbook.py. The modules run with this venv's python (pymongo 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kmiplab.playbook import COLLECTIONS_PATH, REPO_ROOT, run_playbook
from psmdb_emulator.server.testing import (
    QUICK_SHUTDOWN,
    EmulatorProcess,
    RawClient,
    initiate_and_step_up,
    terminate_all,
    wait_for,
)

HOSTS = ("127.0.40.51", "127.0.40.52", "127.0.40.53")
PORT = 27017
SET_NAME = "rsansible"
TEST_COLLECTIONS = REPO_ROOT / ".build" / "test-collections"

PLAYBOOK = """
- name: community.mongodb against the emulated replica set
  hosts: localhost
  gather_facts: false
  tasks:
    - name: mongodb_info
      community.mongodb.mongodb_info:
        login_host: "{{ primary_host }}"
        login_port: 27017
      register: info

    - name: mongodb_status
      community.mongodb.mongodb_status:
        login_host: "{{ primary_host }}"
        login_port: 27017
        replica_set: rsansible
        validate: default
        poll: 5
        interval: 2

    - name: mongodb_replicaset in check mode
      community.mongodb.mongodb_replicaset:
        login_host: "{{ primary_host }}"
        login_port: 27017
        replica_set: rsansible
        members: "{{ members }}"
      check_mode: true
      register: replicaset

    - name: mongodb_stepdown in check mode
      community.mongodb.mongodb_stepdown:
        login_host: "{{ primary_host }}"
        login_port: 27017
      check_mode: true
      register: stepdown_check

    - name: mongodb_stepdown
      community.mongodb.mongodb_stepdown:
        login_host: "{{ primary_host }}"
        login_port: 27017
        stepdown_seconds: 20
        secondary_catch_up: 10
        poll: 5
        interval: 2

    - name: mongodb_stepdown of a member that is now a secondary changes nothing
      community.mongodb.mongodb_stepdown:
        login_host: "{{ primary_host }}"
        login_port: 27017
      register: stepdown_again
"""


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[EmulatorProcess]]:
    if not (TEST_COLLECTIONS / "ansible_collections" / "community" / "mongodb").is_dir():
        pytest.fail(f"community.mongodb is missing from {TEST_COLLECTIONS}: run `make test-collections`")
    base: Path = tmp_path_factory.mktemp("community")
    processes = []
    for index, host in enumerate(HOSTS):
        workdir = base / f"member{index}"
        workdir.mkdir()
        processes.append(EmulatorProcess(workdir, host, PORT, ["--replSet", SET_NAME, *QUICK_SHUTDOWN]))
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_listening()
        initiate_and_step_up(processes, SET_NAME, heartbeatIntervalMillis=1000, electionTimeoutMillis=10000)
        yield processes
    finally:
        terminate_all(processes)


def states(member: EmulatorProcess) -> dict[str, str]:
    status = RawClient(member.address).run("admin", {"replSetGetStatus": 1})
    return {m["name"]: m["stateStr"] for m in status["members"]}


def test_i10_community_mongodb_modules_run_against_the_set(members: list[EmulatorProcess], tmp_path: Path) -> None:
    primary = members[0]
    wait_for(
        lambda: sorted(states(primary).values()) == ["PRIMARY", "SECONDARY", "SECONDARY"],
        120,
        "a healthy set",
    )
    insert = {"insert": "things", "documents": [{"_id": 1}], "writeConcern": {"w": "majority"}}
    assert RawClient(primary.address).run("app", insert)["n"] == 1
    result = run_playbook(
        PLAYBOOK,
        extra_vars={"primary_host": primary.host, "members": [m.address for m in members]},
        workdir=tmp_path,
        env={"ANSIBLE_COLLECTIONS_PATH": f"{COLLECTIONS_PATH}:{TEST_COLLECTIONS}"},
        timeout=300,
    )
    assert result.rc == 0, result.explain()
    info: dict[str, Any] = result.task("mongodb_info").result
    assert info["general"]["version"] == "7.0.14-8"
    assert {"read", "readWrite", "dbOwner"} <= set(info["roles"]["app"]) and "root" not in info["roles"]["app"]
    assert set(info["databases"]) >= {"app", "local"}
    assert info["parameters"]["shutdownTimeoutMillisForSignaledShutdown"] == 500
    assert result.task("mongodb_status").status == "ok"
    assert result.task("mongodb_replicaset in check mode").status == "ok"  # initiated already: no change
    assert result.task("mongodb_stepdown in check mode").status == "changed"
    assert result.task("mongodb_stepdown").status == "changed"
    assert result.task("mongodb_stepdown of a member that is now a secondary changes nothing").status == "ok"
    assert states(primary)[primary.address] == "SECONDARY"
    wait_for(lambda: list(states(primary).values()).count("PRIMARY") == 1, 60, "a new primary")
