# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The work of ``mongod_kmip_config``: validate everything, then write once, atomically."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import MutableMapping
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import FileWriteError, InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import (
    CONFLICTING_KEYS,
    DEFAULT_CIPHER_MODE,
    KMIP_CONFIG_ARGSPEC,
    KmipEncryptionConfig,
    masked,
    refuse_conflicting_key_management,
    remove_encryption,
    render_security_yaml,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import (
    DEFAULT_DB_PATH,
    DbPathState,
    check_encryption_change,
    inspect_db_path,
)
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import load_ca_file, load_client_pem
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.file_access import (
    ServiceUser,
    check_readable_by,
    lookup_group,
    lookup_service_user,
)

CONFIG_ARGSPEC: dict[str, dict[str, Any]] = {
    **{name: dict(spec) for name, spec in KMIP_CONFIG_ARGSPEC.items()},
    "path": {"type": "path", "default": "/etc/mongod.conf"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "backup": {"type": "bool", "default": False},
    "service_user": {"type": "str", "default": "mongod"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw"},
    "db_path": {"type": "path"},
    "check_files": {"type": "bool", "default": True},
    "replace_key_management": {"type": "bool", "default": False},
}

_OCTAL_MODE = re.compile(r"^0?[0-7]{3,4}$")


class ConfigRun:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.path: str = os.path.realpath(self.params["path"])
        self.present = self.params["state"] == "present"
        self.notes: list[str] = []

    def run(self) -> dict[str, Any]:
        conf = MongodConf.read(self.params["path"])
        conf.require_editable()
        before_security = conf.security
        config = self._config(before_security)
        data = self._check_data(conf, before_security, config)
        service_user = lookup_service_user(self.params["service_user"])
        if config is not None and self.params["check_files"]:
            self._check_files(config, service_user)
        uid, gid, mode = self._file_attributes(config, service_user)

        after: dict[str, Any] = {}

        def edit(security: MutableMapping[str, Any]) -> None:
            if config is not None:
                if self.params["replace_key_management"]:
                    self.notes.extend(_remove_replaced_key_management(security))
                self.notes.extend(config.apply_to(security))
            else:
                remove_encryption(security)
            after["security"] = masked(security) or None

        new_text = conf.edit_security(edit)
        content_changed = new_text != conf.text
        result: dict[str, Any] = {
            "path": self.params["path"],
            "security": after.get("security"),
            "restart_required": content_changed,
            "db_path": data.db_path,
            "data_encryption": data.encryption_kind or ("unencrypted" if data.holds_unencrypted_data else "none"),
            "data_key_identifier": data.kmip_key_id,
            "notes": self.notes,
        }
        if self.module._diff:
            result["diff"] = {
                "before": render_security_yaml(masked(before_security)),
                "after": render_security_yaml(after.get("security")),
                "before_header": f"{self.params['path']} (security section)",
                "after_header": f"{self.params['path']} (security section)",
            }
        for note in self.notes:
            self.module.warn(note)
        attributes_changed = self._attributes_differ(uid, gid, mode)
        result["changed"] = content_changed or attributes_changed
        if self.module.check_mode or not result["changed"]:
            return result
        if self.params["backup"] and content_changed:
            result["backup_file"] = self.module.backup_local(self.path)
        if content_changed:
            self._write(new_text.encode("utf-8"), uid, gid, mode)
        else:
            os.chown(self.path, uid, gid)
            os.chmod(self.path, mode)
        return result

    # -- reading and validation ----------------------------------------------------------

    def _config(self, security: Any) -> KmipEncryptionConfig | None:
        if not self.present:
            return None
        config = KmipEncryptionConfig.from_options({name: self.params.get(name) for name in KMIP_CONFIG_ARGSPEC})
        if not self.params["replace_key_management"]:
            refuse_conflicting_key_management(security or {})
        return config

    def _check_data(self, conf: MongodConf, security: Any, config: KmipEncryptionConfig | None) -> DbPathState:
        db_path = self.params["db_path"] or conf.db_path or DEFAULT_DB_PATH
        data = inspect_db_path(db_path)
        if config is not None and self.params["replace_key_management"]:
            _refuse_replacing_with_data(db_path, security or {})
        current = (security or {}).get("encryptionCipherMode") or DEFAULT_CIPHER_MODE
        check_encryption_change(
            data,
            enable=config is not None,
            key_identifier=config.kmip.key_identifier if config else None,
            current_cipher_mode=str(current),
            wanted_cipher_mode=config.effective_cipher_mode if config else None,
        )
        return data

    def _check_files(self, config: KmipEncryptionConfig, user: ServiceUser) -> None:
        kmip = config.kmip
        if kmip.server_ca_file is not None:
            check_readable_by("server_ca_file", kmip.server_ca_file, user)
            load_ca_file("server_ca_file", kmip.server_ca_file)
        if kmip.client_certificate_file is not None:
            check_readable_by("client_certificate_file", kmip.client_certificate_file, user)
            pem = load_client_pem(kmip.client_certificate_file, kmip.client_certificate_password)
            for warning in pem.warnings:
                self.module.warn(warning)

    def _file_attributes(self, config: KmipEncryptionConfig | None, user: ServiceUser) -> tuple[int, int, int]:
        current = os.stat(self.path)
        owner = self.params["owner"]
        uid = user.uid if owner is None else lookup_service_user(owner, option="owner").uid
        gid = current.st_gid if self.params["group"] is None else lookup_group(self.params["group"])
        mode = _parse_mode(self.params["mode"])
        if config is not None and config.writes_password:
            if mode is None:
                mode = 0o600
            elif mode & 0o077:
                raise InvalidOptionError(
                    "mode",
                    f"{mode:04o} gives the group or others access to a file that holds "
                    "client_certificate_password; use 0600 (or 0400)",
                )
        return uid, gid, stat.S_IMODE(current.st_mode) if mode is None else mode

    def _attributes_differ(self, uid: int, gid: int, mode: int) -> bool:
        current = os.stat(self.path)
        return (current.st_uid, current.st_gid, stat.S_IMODE(current.st_mode)) != (uid, gid, mode)

    # -- writing -------------------------------------------------------------------------

    def _write(self, data: bytes, uid: int, gid: int, mode: int) -> None:
        """Temp file in the same directory (created 0600), final owner/mode set, then rename.

        The new file never exists with a wider mode than asked, even for an instant.
        """
        directory = os.path.dirname(self.path)
        context = self.module.selinux_context(self.path) if self.module.selinux_enabled() else None
        temp: str | None = None
        try:
            fd, temp = tempfile.mkstemp(dir=directory, prefix=".mongod_kmip_config.", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                try:
                    os.fchown(handle.fileno(), uid, gid)
                except PermissionError:
                    raise InvalidOptionError(
                        "owner", f"cannot give {self.params['path']} to uid {uid} / gid {gid}: permission denied"
                    ) from None
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
            temp = None
        except OSError as exc:
            raise FileWriteError("path", self.path, exc) from None
        finally:
            if temp is not None and os.path.exists(temp):
                os.unlink(temp)
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
        if context is not None:
            self.module.set_context_if_different(self.path, context, False)


def _refuse_replacing_with_data(db_path: str, security: Any) -> None:
    """``replace_key_management`` is for a member about to initial-sync: its dbPath is missing or empty.

    Any file there (data, ``key.db``, ``storage.bson``) was written under the old key management,
    which PSMDB cannot switch in place: the refusal stays exactly as without the option.
    """
    replaced = [f"security.{key}" for key in CONFLICTING_KEYS if security.get(key) is not None]
    if not replaced or not os.path.isdir(db_path):
        return
    try:
        entries = sorted(os.listdir(db_path))
    except OSError as exc:
        raise InvalidOptionError("db_path", f"cannot list {db_path}: {exc.strerror}") from None
    if entries:
        raise InvalidOptionError(
            "replace_key_management",
            f"replaces {', '.join(replaced)} only on a member whose dbPath is empty (about to initial-sync), but "
            f"{db_path} holds {', '.join(entries[:5])}{' ...' if len(entries) > 5 else ''}: PSMDB cannot switch "
            "existing data to KMIP in place. Set the dbPath aside first (kmipops.psmdb.mongod_dbpath, or the "
            "kmip_conversion role)",
        )


def _remove_replaced_key_management(security: MutableMapping[str, Any]) -> list[str]:
    notes = []
    for key, what in CONFLICTING_KEYS.items():
        if key in security:
            del security[key]
            notes.append(
                f"removed security.{key} ({what}): replace_key_management on an empty dbPath, which mongod fills "
                "by initial sync under the KMIP master key"
            )
    return notes


def _parse_mode(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and _OCTAL_MODE.match(value):
        mode = int(value, 8)
    else:
        raise InvalidOptionError("mode", f"must be an octal mode such as '0600', got {value!r}")
    if not 0 <= mode <= 0o7777:
        raise InvalidOptionError("mode", f"must be an octal mode such as '0600', got {value!r}")
    return mode
