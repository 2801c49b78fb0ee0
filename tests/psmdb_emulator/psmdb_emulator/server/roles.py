"""Built-in roles as ``rolesInfo`` lists them (src/mongo/db/auth/builtin_roles.yml, MongoDB 7.0 docs
"Built-In Roles"). The emulator stores no user-defined roles and enforces no privileges: any authenticated
user may run any command (see README)."""

from __future__ import annotations

from typing import Any

# Roles that exist on every database.
DATABASE_ROLES = ("read", "readWrite", "dbAdmin", "dbOwner", "userAdmin")
# Roles that exist only on the admin database.
ADMIN_ROLES = (
    "readAnyDatabase",
    "readWriteAnyDatabase",
    "userAdminAnyDatabase",
    "dbAdminAnyDatabase",
    "clusterAdmin",
    "clusterManager",
    "clusterMonitor",
    "hostManager",
    "enableSharding",
    "backup",
    "restore",
    "root",
    "__queryableBackup",
    "__system",
)


def builtin_roles(db: str) -> list[str]:
    return [*DATABASE_ROLES, *ADMIN_ROLES] if db == "admin" else list(DATABASE_ROLES)


def _document(role: str, db: str, show_privileges: bool) -> dict[str, Any]:
    document: dict[str, Any] = {"role": role, "db": db, "isBuiltin": True, "roles": [], "inheritedRoles": []}
    if show_privileges:
        # Privileges are not modelled: the lists are empty rather than invented.
        document["privileges"] = []
        document["inheritedPrivileges"] = []
    return document


def roles_info(db: str, target: Any, show_builtin: bool, show_privileges: bool) -> list[dict[str, Any]]:
    """``{rolesInfo: 1 | "name" | {role, db} | [...]}`` run against ``db``."""
    if target == 1 or target == 1.0:
        return [_document(role, db, show_privileges) for role in builtin_roles(db)] if show_builtin else []
    wanted = target if isinstance(target, list) else [target]
    found = []
    for item in wanted:
        role, role_db = (item, db) if isinstance(item, str) else (item.get("role"), item.get("db", db))
        if role in builtin_roles(role_db):
            found.append(_document(role, role_db, show_privileges))
    return found
