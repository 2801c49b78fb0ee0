# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""The work of ``mongod_dbpath``: set a stopped member's dbPath aside, restore it, or purge it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion import dbpath
from ansible_collections.kmipops.psmdb.plugins.module_utils._conversion.errors import MongodRunningError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.storage_metadata import DEFAULT_DB_PATH
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.member_files import LOCK_FILE, probe_lock
from ansible_collections.kmipops.psmdb.plugins.module_utils._rotation.service import unit_state

DBPATH_ARGSPEC: dict[str, dict[str, Any]] = {
    "state": {"type": "str", "choices": ["set_aside", "restored", "purged"], "required": True},
    "config": {"type": "path", "default": "/etc/mongod.conf"},
    "db_path": {"type": "path"},
    "service_name": {"type": "str", "default": "mongod.service"},
}


def refuse_running(db_path: str, service_name: str | None, systemctl: Callable[[], str]) -> None:
    """mongod must be stopped: its unit inactive and nobody holding ``mongod.lock``."""
    if service_name:
        state = unit_state(systemctl(), service_name)
        if state.running:
            raise MongodRunningError(
                f"the systemd unit {service_name} is {state.active_state} ({state.sub_state}, "
                f"MainPID {state.main_pid}): stop it first (systemctl stop {service_name}); nothing was changed",
                service=state.as_result(),
            )
    lock = probe_lock(f"{db_path}/{LOCK_FILE}")
    if lock.held is not False and lock.exists:
        raise MongodRunningError(
            f"{lock.path} is held by a running process (pid {lock.pid}) or cannot be probed ({lock.error}): a mongod "
            "still owns this dbPath; nothing was changed",
            lock=lock.as_result(),
        )


class DbPathRun:
    def __init__(
        self,
        params: dict[str, Any],
        check_mode: bool,
        systemctl: Callable[[], str],
        selinux: dbpath.SelinuxHooks,
    ) -> None:
        self.params = params
        self.check_mode = check_mode
        self.systemctl = systemctl
        self.selinux = selinux

    def db_path(self) -> str:
        if self.params["db_path"]:
            return self.params["db_path"]
        conf = MongodConf.read(self.params["config"], option="config")
        return str(conf.db_path or DEFAULT_DB_PATH)

    def run(self) -> dict[str, Any]:
        state = self.params["state"]
        db_path = dbpath.real_db_path(self.db_path())
        if state == "set_aside":
            plan: Any = dbpath.plan_set_aside(db_path, self.params["config"])
        elif state == "restored":
            plan = dbpath.plan_restore(db_path)
        else:
            plan = dbpath.plan_purge(db_path)
        result: dict[str, Any] = {"changed": plan.changes, "db_path": db_path, "plan": plan.as_result()}
        if state in ("set_aside", "restored") and plan.changes:
            # a purge touches only the set-aside copies, which no mongod uses
            refuse_running(db_path, self.params["service_name"], self.systemctl)
        if self.check_mode or not plan.changes:
            result["manifests"] = [m.as_result() for m in dbpath.manifests_for(db_path)]
            return result
        if state == "set_aside":
            manifest = dbpath.apply_set_aside(plan, self.params["config"], self.selinux)
            result["set_aside"] = manifest.as_result()
        elif state == "restored":
            manifest = dbpath.apply_restore(plan)
            result["restored"] = manifest.as_result()
        else:
            result["purged"] = [m.as_result() for m in dbpath.apply_purge(plan)]
        result["manifests"] = [m.as_result() for m in dbpath.manifests_for(db_path)]
        return result
