# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.member_config: a member's mongod.conf through the collection's one mongod.conf model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_config import MemberConfig, redactor

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "mongod_conf"

MEMBER = """# a member
storage:
  dbPath: /var/lib/mongo   # data
systemLog:
  destination: file
  path: /var/log/mongodb/mongod.log
  logAppend: true
processManagement:
  fork: true
  pidFilePath: /var/run/mongod.pid
net:
  tls:
    certificateKeyFilePassword: "Tls-Dummy-1"
security:
  authorization: enabled
  enableEncryption: true
  encryptionCipherMode: AES256-GCM
  kmip:
    serverName: kmip1,kmip2   # two KMS
    clientCertificateFile: /etc/mongod/client.pem
    clientCertificatePassword: "Kmip-Dummy-2"
    keyIdentifier: "41"
    rotateMasterKey: true
"""


def read(tmp_path: Path, text: str) -> MemberConfig:
    path = tmp_path / "mongod.conf"
    path.write_text(text)
    return MemberConfig.read(str(path))


def test_what_a_member_config_says(tmp_path: Path) -> None:
    config = read(tmp_path, MEMBER)
    assert config.db_path == "/var/lib/mongo"
    assert (config.log_destination, config.log_path, config.log_append) == ("file", "/var/log/mongodb/mongod.log", True)
    assert (config.fork, config.pid_file) == (True, "/var/run/mongod.pid")
    assert config.uses_kmip and config.cipher_mode == "AES256-GCM"
    assert config.kmip.server_name == ["kmip1", "kmip2"] and config.key_identifier == "41"
    assert config.rotate_master_key is True
    assert sorted(config.secrets) == ["Kmip-Dummy-2", "Tls-Dummy-1"]
    result = config.encryption_result()
    assert result["kmip"]["clientCertificatePassword"] == "********"
    assert "Kmip-Dummy-2" not in repr(result) and "Kmip-Dummy-2" not in repr(config.kmip)


def test_the_copy_without_key_identifier_keeps_everything_else(tmp_path: Path) -> None:
    config = read(tmp_path, MEMBER)
    copy = config.without_key_identifier()
    head = MEMBER.split("security:")[0]
    assert copy.startswith(head), "the sections before security keep every byte"
    expected = yaml.safe_load(MEMBER)
    del expected["security"]["kmip"]["keyIdentifier"]
    assert yaml.safe_load(copy) == expected
    assert "serverName: kmip1,kmip2   # two KMS" in copy, "comments of the security section too"
    assert MemberConfig.read(str(tmp_path / "mongod.conf")).key_identifier == "41", "the file itself is not edited"


def test_defaults_of_a_packaged_config(tmp_path: Path) -> None:
    config = read(tmp_path, (FIXTURES / "net_only.conf").read_text())
    assert config.db_path == "/data/db", "mongod's compiled-in default"
    assert config.log_destination is None and config.fork is False and config.pid_file is None
    assert not config.uses_kmip and config.key_identifier is None and config.secrets == []


def test_a_log_path_without_destination_is_a_file_and_bad_destinations_are_refused(tmp_path: Path) -> None:
    assert read(tmp_path, "systemLog:\n  path: /l/mongod.log\n").log_destination == "file"
    assert read(tmp_path, "systemLog:\n  destination: syslog\n").log_destination == "syslog"
    with pytest.raises(InvalidOptionError) as caught:
        read(tmp_path, "systemLog:\n  destination: console\n")
    assert caught.value.option == "config" and "file or syslog" in str(caught.value)


def test_an_empty_key_identifier_is_none(tmp_path: Path) -> None:
    text = 'security:\n  enableEncryption: true\n  kmip:\n    serverName: k\n    keyIdentifier: ""\n'
    assert read(tmp_path, text).key_identifier is None


def test_a_missing_config_is_named_by_the_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        MemberConfig.read(str(tmp_path / "absent.conf"))
    assert caught.value.option == "config"


def test_redactor_masks_every_secret_longest_first() -> None:
    redact = redactor(["abc", "abcdef", ""])
    assert redact("x abcdef y abc z") == "x ******** y ******** z"
    assert redactor([])("nothing") == "nothing"
