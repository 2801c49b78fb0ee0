# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmip_server_info run in-process: what it reads from mongod_config, before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import KmipSettings
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import to_plain
from ansible_collections.kmipops.psmdb.plugins.modules import kmip_server_info
from unit.utils import FIXTURES
from unit.utils.module_runner import run_module

SECRET = "Pem-Pass:w0rd#1"


def test_a_broken_mongod_conf_is_refused_without_echoing_its_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parser's excerpt of the offending line would print the clientCertificatePassword."""
    conf = tmp_path / "mongod.conf"
    conf.write_text(f'security:\n  kmip:\n    serverName: kmip1\n    clientCertificatePassword: "{SECRET}\n  x: [\n')
    result = run_module(kmip_server_info, {"mongod_config": str(conf)}, capsys)
    assert result["failed"] is True and result["error_kind"] == "invalid_option"
    assert result["msg"].startswith("mongod_config:") and "not valid YAML" in result["msg"]
    assert SECRET not in result["msg"] and "w0rd" not in repr(result)


def test_several_documents_are_refused_as_mongod_conf_is_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "mongod.conf"
    conf.write_text("net:\n  port: 27017\n---\nsecurity:\n  kmip:\n    serverName: kmip1\n")
    result = run_module(kmip_server_info, {"mongod_config": str(conf)}, capsys)
    assert result["failed"] is True
    assert result["msg"] == f"mongod_config: {conf} holds several YAML documents; mongod reads one"


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "mongod_conf").glob("*.conf")))
def test_mongod_config_is_read_through_the_mongod_conf_model(name: str) -> None:
    """Every corpus file gives the settings mongod_kmip_config's model reads from it."""
    path = FIXTURES / "mongod_conf" / name
    expected = KmipSettings.from_mongod_security(to_plain(MongodConf(path.read_text()).security))
    assert kmip_server_info.settings_from_mongod_config(str(path)) == expected


def test_problems_fail_the_task_with_their_kind_and_the_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {"where": "kmip1:5696", "severity": "error", "message": "KMIP server kmip1:5696: timed out"}
    report = {"changed": False, "ok": False, "problems": [problem], "servers": []}
    monkeypatch.setattr(kmip_server_info, "run", lambda module: dict(report))
    args = {"server_name": ["kmip1"], "client_certificate_file": "/c.pem"}
    result = run_module(kmip_server_info, args, capsys)
    assert result["failed"] is True and result["error_kind"] == "problems"
    assert result["msg"].endswith("timed out") and result["problems"] == [problem]
    quiet = run_module(kmip_server_info, {**args, "fail_on_problems": False}, capsys)
    assert not quiet.get("failed") and quiet["ok"] is False and "error_kind" not in quiet
