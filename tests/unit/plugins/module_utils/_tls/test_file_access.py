# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tls_files.check_readable_by decides as the kernel would, POSIX access ACLs included.

The files get real ACLs (the ``system.posix_acl_access`` xattr, as setfacl writes it) and the
service user is a made-up uid/gid, so the decision comes from the ACL and mode bits alone.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.file_access import (
    ServiceUser,
    check_readable_by,
    read_access_acl,
)

USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED = 0xFFFFFFFF
SVC = ServiceUser(name="svc", uid=40401, gids=frozenset({40402, 40403}))


def set_acl(path: Path, *entries: tuple[int, int, int]) -> None:
    blob = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    os.setxattr(path, "system.posix_acl_access", blob)


def acl(user_obj: int, group_obj: int, other: int, *named: tuple[int, int, int], mask: int | None = None) -> list:
    entries = [(USER_OBJ, user_obj, UNDEFINED), *[e for e in named if e[0] == USER], (GROUP_OBJ, group_obj, UNDEFINED)]
    entries += [e for e in named if e[0] == GROUP]
    if mask is not None:
        entries.append((MASK, mask, UNDEFINED))
    entries.append((OTHER, other, UNDEFINED))
    return entries


@pytest.fixture
def tree() -> Iterator[Path]:
    """A directory under /tmp that anyone may search (pytest's own tmp dirs are 0700)."""
    with tempfile.TemporaryDirectory(prefix="kmipops-acl-") as name:
        directory = Path(name)
        directory.chmod(0o711)
        probe = directory / "probe"
        probe.write_text("x")
        try:
            set_acl(probe, *acl(6, 4, 4))
        except OSError as exc:
            pytest.skip(f"this file system has no POSIX ACLs: {exc}")
        probe.unlink()
        yield directory


def pem(directory: Path, mode: int = 0o600, gid: int | None = None) -> Path:
    path = directory / "client.pem"
    path.write_text("not checked here")
    path.chmod(mode)
    if gid is not None:
        os.chown(path, -1, gid)
    return path


def readable(path: Path) -> bool:
    try:
        check_readable_by("client_certificate_file", str(path), SVC)
    except InvalidOptionError:
        return False
    return True


def test_mode_bits_alone_still_decide(tree: Path) -> None:
    path = pem(tree, 0o600)
    assert read_access_acl(str(path)) is None
    assert not readable(path)
    path.chmod(0o604)
    assert readable(path)


def test_named_user_entry_grants_read(tree: Path) -> None:
    path = pem(tree, 0o600)
    set_acl(path, *acl(6, 0, 0, (USER, 4, SVC.uid), mask=4))
    assert read_access_acl(str(path)) is not None
    assert readable(path)


def test_mask_limits_a_named_user(tree: Path) -> None:
    path = pem(tree, 0o600)
    set_acl(path, *acl(6, 0, 0, (USER, 4, SVC.uid), mask=0))
    assert not readable(path)


def test_named_user_entry_wins_over_other(tree: Path) -> None:
    # "other" may read, but a matching named-user entry without r decides first.
    path = pem(tree, 0o604)
    set_acl(path, *acl(6, 0, 4, (USER, 0, SVC.uid), mask=4))
    assert not readable(path)


def test_named_group_entry_grants_read(tree: Path) -> None:
    path = pem(tree, 0o600)
    set_acl(path, *acl(6, 0, 0, (GROUP, 4, 40403), mask=4))
    assert readable(path)


def test_matching_group_without_read_denies_even_if_other_reads(tree: Path) -> None:
    path = pem(tree, 0o604)
    set_acl(path, *acl(6, 0, 4, (GROUP, 0, 40402), mask=4))
    assert not readable(path)


def test_owning_group_is_judged_under_the_mask(tree: Path) -> None:
    path = pem(tree, 0o640, gid=40402)
    assert readable(path)
    set_acl(path, *acl(6, 4, 0, (USER, 0, 1), mask=0))
    assert not readable(path)


def test_directory_acl_can_deny_search(tree: Path) -> None:
    sub = tree / "kmip"
    sub.mkdir()
    sub.chmod(0o711)
    path = pem(sub, 0o644)
    assert readable(path)
    set_acl(sub, *acl(7, 1, 1, (USER, 0, SVC.uid), mask=1))
    with pytest.raises(InvalidOptionError, match=r"no search permission on .*/kmip"):
        check_readable_by("client_certificate_file", str(path), SVC)


def test_refusal_names_the_acl(tree: Path) -> None:
    path = pem(tree, 0o600)
    set_acl(path, *acl(6, 0, 0, (USER, 0, SVC.uid), mask=4))
    refusal = r"client_certificate_file: .*not readable by the service user 'svc'.*access ACL"
    with pytest.raises(InvalidOptionError, match=refusal):
        check_readable_by("client_certificate_file", str(path), SVC)
