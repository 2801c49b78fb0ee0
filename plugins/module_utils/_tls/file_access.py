# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Whether the service user can read the KMIP TLS files, decided as the kernel decides it.

The module usually runs as root, which can read anything; mongod runs as ``mongod``. So
readability is decided along the path for that user's uid and groups as the kernel decides it:
the POSIX access ACL when the file has one (acl(5): owner, named user under the mask, owning or
named groups under the mask, other), else the mode bits (owner, group, other class). What the
files hold is checked by ``_tls.certificates``.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import stat
import struct

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError


@dataclasses.dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gids: frozenset[int]


def lookup_service_user(name: str, option: str = "service_user") -> ServiceUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidOptionError(option, f"user {name!r} does not exist on this host") from None
    groups = frozenset(os.getgrouplist(name, entry.pw_gid))
    return ServiceUser(name=name, uid=entry.pw_uid, gids=groups)


def lookup_group(name: str, option: str = "group") -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise InvalidOptionError(option, f"group {name!r} does not exist on this host") from None


# Linux's xattr encoding of an access ACL (linux/posix_acl_xattr.h): a 4-byte version, then
# (tag u16, perm u16, id u32) entries, little-endian.
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_ENTRY = struct.Struct("<HHI")
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
READ, WRITE, SEARCH = 4, 2, 1


def read_access_acl(path: str) -> list[tuple[int, int, int]] | None:
    """The (tag, perm, id) entries of ``path``'s access ACL, or None when it has only mode bits."""
    try:
        blob = os.getxattr(path, _ACL_XATTR)
    except OSError:  # ENODATA: no ACL; ENOTSUP: the file system has no ACLs
        return None
    if len(blob) < 4 or struct.unpack_from("<I", blob)[0] != _ACL_VERSION or (len(blob) - 4) % _ACL_ENTRY.size:
        return None
    return [_ACL_ENTRY.unpack_from(blob, offset) for offset in range(4, len(blob), _ACL_ENTRY.size)]


def _acl_allows(acl: list[tuple[int, int, int]], st: os.stat_result, user: ServiceUser, want: int) -> bool:
    """acl(5) "ACCESS CHECK ALGORITHM": the first matching class decides."""
    if st.st_uid == user.uid:
        return all(perm & want == want for tag, perm, _ident in acl if tag == _ACL_USER_OBJ)
    mask = next((perm for tag, perm, _ident in acl if tag == _ACL_MASK), 7)
    named = [perm for tag, perm, ident in acl if tag == _ACL_USER and ident == user.uid]
    if named:
        return named[0] & mask & want == want
    groups = [
        perm
        for tag, perm, ident in acl
        if (tag == _ACL_GROUP_OBJ and st.st_gid in user.gids) or (tag == _ACL_GROUP and ident in user.gids)
    ]
    if groups:
        return any(perm & mask & want == want for perm in groups)
    return all(perm & want == want for tag, perm, _ident in acl if tag == _ACL_OTHER)


def _allowed(path: str, st: os.stat_result, user: ServiceUser, want: int) -> bool:
    if user.uid == 0:
        return True
    acl = read_access_acl(path)
    if acl is not None:
        return _acl_allows(acl, st, user, want)
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid == user.uid:
        return (mode >> 6) & want == want
    if st.st_gid in user.gids:
        return (mode >> 3) & want == want
    return mode & want == want


def allows(path: str, user: ServiceUser, want: int) -> bool:
    """Whether ``user`` has the ``want`` bits (READ, WRITE, SEARCH) on ``path`` itself (not its parents)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return _allowed(path, st, user, want)


def check_readable_by(option: str, path: str, user: ServiceUser) -> None:
    """The file exists, is a regular file, and ``user`` can reach and read it."""
    if not os.path.isabs(path):
        raise InvalidOptionError(option, f"{path!r} must be an absolute path (mongod's working directory is not known)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidOptionError(option, f"{path} does not exist") from None
    except OSError as exc:
        raise InvalidOptionError(option, f"{path} cannot be examined: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidOptionError(option, f"{path} is not a regular file")
    directory = os.path.dirname(os.path.realpath(path))
    parents = []
    while True:
        parents.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for directory in reversed(parents):
        if not _allowed(directory, os.stat(directory), user, SEARCH):
            raise InvalidOptionError(
                option,
                f"{path} is not reachable by the service user {user.name!r}: no search permission on {directory}",
            )
    if not _allowed(path, st, user, READ):
        raise InvalidOptionError(
            option,
            f"{path} is not readable by the service user {user.name!r} "
            f"(owner uid {st.st_uid}, group gid {st.st_gid}, mode {stat.S_IMODE(st.st_mode):04o}"
            f"{', access ACL' if read_access_acl(path) is not None else ''})",
        )
