# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_rotation.service: the unit's EnvironmentFile as systemd reads it, and the unit's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.errors import MongodRunningError
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.service import (
    read_environment_file,
    refuse_running_unit,
    unit_state,
)

PERCONA_DEFAULT = """\
# /etc/default/mongod of percona-server-mongodb
OPTIONS="-f /etc/mongod.conf"
STDOUT="/var/log/mongodb/mongod.stdout"
STDERR="/var/log/mongodb/mongod.stderr"
NUMACTL="numactl --interleave=all"
; a comment systemd also takes
export KRB5_KTNAME='/etc/mongodb.keytab'
LONG=one \\
  two
EMPTY=
"""


def env_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mongod"
    path.write_text(text)
    return str(path)


def test_percona_default_file(tmp_path: Path) -> None:
    parsed = read_environment_file(env_file(tmp_path, PERCONA_DEFAULT))
    assert parsed.options_config == "/etc/mongod.conf"
    assert parsed.variables == {"KRB5_KTNAME": "/etc/mongodb.keytab", "LONG": "one two", "EMPTY": ""}
    assert sorted(parsed.ignored) == ["NUMACTL", "STDERR", "STDOUT"]
    assert parsed.as_result()["variables"] == ["EMPTY", "KRB5_KTNAME", "LONG"], "names only, never values"


@pytest.mark.parametrize(
    ("options", "config"),
    [
        ("--config /etc/m.conf", "/etc/m.conf"),
        ("--config=/etc/m.conf", "/etc/m.conf"),
        ("-f/etc/m.conf", "/etc/m.conf"),
        ("", None),
    ],
)
def test_options_may_name_the_config(tmp_path: Path, options: str, config: str | None) -> None:
    assert read_environment_file(env_file(tmp_path, f'OPTIONS="{options}"\n')).options_config == config


def test_other_mongod_options_are_refused_by_name_not_value(tmp_path: Path) -> None:
    text = 'OPTIONS="-f /etc/mongod.conf --kmipClientCertificatePassword=Dummy-Opt-3 --port 27018"\n'
    with pytest.raises(InvalidOptionError) as caught:
        read_environment_file(env_file(tmp_path, text))
    message = str(caught.value)
    assert caught.value.option == "environment_file"
    assert "--kmipClientCertificatePassword, --port" in message and "Dummy-Opt-3" not in message


def test_bad_lines_are_named_not_shown(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        read_environment_file(env_file(tmp_path, "A=1\nthis is Dummy-Line-4\n"))
    assert "line 2" in str(caught.value) and "Dummy-Line-4" not in str(caught.value)
    with pytest.raises(InvalidOptionError, match="unbalanced quotes"):
        read_environment_file(env_file(tmp_path, "A='open\n"))
    with pytest.raises(InvalidOptionError, match="does not exist"):
        read_environment_file(str(tmp_path / "absent"))


def systemctl(tmp_path: Path, output: str, code: int = 0) -> str:
    script = tmp_path / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\nprintf '{output}'\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


def test_an_active_unit_is_refused(tmp_path: Path) -> None:
    fake = systemctl(
        tmp_path, "LoadState=loaded\\nActiveState=active\\nSubState=running\\nMainPID=812\\nRestart=always\\n"
    )
    state = unit_state(fake, "mongod")
    assert (state.active_state, state.main_pid, state.restart, state.running) == ("active", 812, "always", True)
    assert (tmp_path / "args").read_text().split()[-2:] == ["--", "mongod"]
    with pytest.raises(MongodRunningError) as caught:
        refuse_running_unit(state)
    assert "systemctl stop mongod" in str(caught.value) and caught.value.details()["service"]["main_pid"] == 812


@pytest.mark.parametrize("active", ["inactive", "failed"])
def test_a_stopped_unit_is_fine(tmp_path: Path, active: str) -> None:
    fake = systemctl(tmp_path, f"LoadState=loaded\\nActiveState={active}\\nSubState=dead\\nMainPID=0\\nRestart=no\\n")
    state = unit_state(fake, "mongod")
    refuse_running_unit(state)
    assert state.main_pid is None and state.running is False


def test_a_unit_that_does_not_exist_or_cannot_be_asked(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="no unit"):
        unit_state(systemctl(tmp_path, "LoadState=not-found\\nActiveState=inactive\\n"), "mongdo")
    with pytest.raises(InvalidOptionError, match="failed"):
        unit_state(systemctl(tmp_path, "", code=1), "mongod")
    with pytest.raises(InvalidOptionError, match="cannot ask systemd"):
        unit_state(str(tmp_path / "absent"), "mongod")
