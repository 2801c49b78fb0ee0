# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mongod_kmip_config through ansible-playbook on localhost, with temp files only.

One playbook run (ansible-playbook is slow to start) covers: check mode, real run, idempotent
check mode, idempotent real run, on a copy of Percona's package mongod.conf; and the refusal of
a different key identifier on a fake dbPath whose storage.bson (written with bson) names
another key. The run is made with -vvv --diff and its whole output is searched for the password.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bson
import pytest

from unit.utils.mongod_pki import make_pki

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "unit" / "fixtures" / "mongod_conf"
PASSWORD = "Int3gr@tion:Secret#42"
PLAYBOOK = """
- name: mongod_kmip_config lifecycle
  hosts: localhost
  gather_facts: false
  vars:
    kmip_options: &kmip
      path: "{{ conf }}"
      server_name: [127.0.50.21, 127.0.50.22]
      port: 5696
      server_ca_file: "{{ ca_file }}"
      client_certificate_file: "{{ client_pem }}"
      client_certificate_password: "{{ pem_password }}"
      connect_retries: 2
      cipher_mode: AES256-GCM
      service_user: "{{ me }}"
      backup: true
  tasks:
    - name: check mode
      kmipops.psmdb.mongod_kmip_config: *kmip
      check_mode: true
      register: first_check
    - name: real run
      kmipops.psmdb.mongod_kmip_config: *kmip
      register: first_run
    - name: idempotent check mode
      kmipops.psmdb.mongod_kmip_config: *kmip
      check_mode: true
      register: second_check
    - name: idempotent real run
      kmipops.psmdb.mongod_kmip_config: *kmip
      register: second_run
    - name: a different key identifier on encrypted data
      kmipops.psmdb.mongod_kmip_config:
        path: "{{ encrypted_conf }}"
        server_name: [127.0.50.21]
        client_certificate_file: "{{ client_pem }}"
        client_certificate_password: "{{ pem_password }}"
        key_identifier: "key-B"
        service_user: "{{ me }}"
      register: mismatch
      ignore_errors: true
    - name: hand the results to the test (debug runs on the controller, no module start)
      ansible.builtin.debug:
        msg: "RESULTS_JSON={{ {'first_check': first_check, 'first_run': first_run, 'second_check': second_check,
                               'second_run': second_run, 'mismatch': mismatch} | to_json }}"
"""


@dataclasses.dataclass
class Run:
    output: str
    results: dict
    conf: Path
    encrypted_conf: Path
    encrypted_sha_before: str
    original: bytes
    workdir: Path


def results_from(output: str) -> dict:
    match = re.search(r'"msg": "RESULTS_JSON=(.*)"\s*$', output, re.MULTILINE)
    assert match, "the playbook printed its results"
    return json.loads(json.loads(f'"{match.group(1)}"'))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def playbook_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("kmipops-playbook")
    try:
        pki = make_pki(work / "pki", password=PASSWORD)
        etc = work / "etc"
        etc.mkdir()
        conf = etc / "mongod.conf"
        original = (
            (CORPUS / "percona_package_default.conf").read_text().replace("/var/lib/mongodb", str(work / "new-db"))
        )
        conf.write_text(original)
        conf.chmod(0o644)

        db = work / "encrypted-db"
        db.mkdir()
        storage = {"storage": {"engine": "wiredTiger", "options": {"encryption": {"kmip": {"keyId": "key-A"}}}}}
        (db / "storage.bson").write_bytes(bson.encode(storage))
        encrypted_conf = work / "encrypted.conf"
        encrypted_conf.write_text(f"storage:\n  dbPath: {db}\nnet:\n  port: 27017\n")

        (work / "playbook.yml").write_text(PLAYBOOK)
        extra = {
            "conf": str(conf),
            "encrypted_conf": str(encrypted_conf),
            "ca_file": str(pki.ca_file),
            "client_pem": str(pki.client_pem_encrypted),
            "pem_password": PASSWORD,
            "me": pwd.getpwuid(os.getuid()).pw_name,
        }
        (work / "vars.json").write_text(json.dumps(extra))
        (work / "vars.json").chmod(0o600)
        collections = REPO / ".build" / "collections"
        link = collections / "ansible_collections" / "kmipops" / "psmdb"
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(REPO)
        env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(collections),
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
            ANSIBLE_REMOTE_TMP=str(work / "ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        encrypted_sha_before = sha256(encrypted_conf)
        log = work / "ansible-playbook.log"  # streamed, so a slow run can be followed with tail -f
        with log.open("w") as stream:
            process = subprocess.run(
                [
                    str(Path(sys.executable).parent / "ansible-playbook"),
                    "-i",
                    "localhost,",
                    "-c",
                    "local",
                    "-vvv",
                    "--diff",
                    "-e",
                    f"@{work / 'vars.json'}",
                    str(work / "playbook.yml"),
                ],
                env=env,
                cwd=work,
                stdout=stream,
                stderr=subprocess.STDOUT,
                timeout=1800,
                check=False,
            )
        output = log.read_text()
        assert process.returncode == 0, output[-4000:]
        yield Run(
            output=output,
            results=results_from(output),
            conf=conf,
            encrypted_conf=encrypted_conf,
            encrypted_sha_before=encrypted_sha_before,
            original=original.encode(),
            workdir=work,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_check_then_write_then_idempotent(playbook_run: Run) -> None:
    results = playbook_run.results
    assert results["first_check"]["changed"] is True
    assert results["first_run"]["changed"] is True and results["first_run"]["restart_required"] is True
    assert results["second_check"]["changed"] is False
    assert results["second_run"]["changed"] is False and results["second_run"]["restart_required"] is False
    text = playbook_run.conf.read_text()
    assert "  enableEncryption: true\n  encryptionCipherMode: AES256-GCM\n  kmip:\n" in text
    assert "    serverName: 127.0.50.21,127.0.50.22\n" in text
    assert stat.S_IMODE(playbook_run.conf.stat().st_mode) == 0o600
    backup = Path(results["first_run"]["backup_file"])
    assert backup.read_bytes() == playbook_run.original
    assert "backup_file" not in results["second_run"]


def test_password_never_in_output_diff_or_listing(playbook_run: Run) -> None:
    assert "clientCertificatePassword: '********'" in playbook_run.output, "the diff was shown, masked"
    assert "enableEncryption: true" in playbook_run.output
    assert PASSWORD not in playbook_run.output
    assert PASSWORD not in json.dumps(playbook_run.results)
    holders = [p.name for p in playbook_run.workdir.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert sorted(holders) == ["mongod.conf", "vars.json"], "only the config (0600) and our own input hold it"


def test_a_different_key_on_encrypted_data_is_refused(playbook_run: Run) -> None:
    mismatch = playbook_run.results["mismatch"]
    assert mismatch["failed"] is True
    assert mismatch["msg"].startswith("key_identifier:")
    assert "'key-A'" in mismatch["msg"] and "rotation" in mismatch["msg"]
    assert sha256(playbook_run.encrypted_conf) == playbook_run.encrypted_sha_before
