# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The malformed-input table: for every module, every option with at least one bad value.

Used in-process by tests/unit/plugins/modules/test_bad_input.py and through ansible-playbook by
tests/integration/test_bad_input_playbook.py. ``SECRET`` is the dummy password the tests grep for.
"""

from __future__ import annotations

from typing import Any

SECRET = "Dummy-S3cret-Pw"
KMIP_MODULES = ("kmip_server_info", "kmip_key", "kmip_key_info")
MONGOD_MODULES = (
    "mongod_member_info",
    "mongod_member_stepdown",
    "mongod_encryption_info",
    "mongod_replset_info",
    "mongod_conversion_info",
)

#: (option, bad value): the KMIP connection options, for every module that takes them
KMIP_CASES: list[tuple[str, Any]] = [
    ("port", 0),
    ("port", -1),
    ("port", 70000),
    ("port", "https"),
    ("connect_timeout_ms", 999),
    ("connect_timeout_ms", -1),
    ("connect_timeout_ms", 2**31),
    ("connect_timeout_ms", 10**13),
    ("connect_retries", -1),
    ("connect_retries", 2**31),
    ("server_name", [""]),
    ("server_name", ["https://kmip.example.com"]),
    ("server_name", ["kmip one"]),
    ("server_name", ["kmip\x00x"]),
    ("server_name", ["kmip/x"]),
    ("server_name", ["admin@kmip"]),
    ("server_ca_file", "/etc/ca\x00.pem"),
    ("server_ca_file", "/etc/ca\x07.pem"),
    ("client_certificate_file", "/etc/c\x00.pem"),
    ("client_certificate_file", "/etc/c\n.pem"),
    ("client_certificate_password", SECRET + "\x00"),
    ("client_certificate_password", SECRET + "\x1b"),
]
SESSION_CASES: list[tuple[str, Any]] = [("kmip_version", "3.0"), ("kmip_version", "")]
#: (option, bad value): the wait options (doc fragment wait), for every module that waits
WAIT_CASES: list[tuple[str, Any]] = [
    ("wait_timeout", 0),
    ("wait_timeout", -1),
    ("wait_timeout", "soon"),
    ("wait_sleep", 0),
    ("wait_sleep", -0.5),
]
#: per module, its own options
OWN_CASES: dict[str, list[tuple[str, Any]]] = {
    "kmip_server_info": [
        ("mongod_config", "/etc/mongod\x00.conf"),
        ("key_identifier", "k\x00"),
        ("fail_on_problems", "maybe"),
    ],
    "kmip_key": [
        ("name", "key\x00"),
        ("name", "key\x01"),
        ("key_identifier", "k\x00"),
        ("state", "gone"),
        ("force", "maybe"),
    ],
    "kmip_key_info": [("key_identifiers", ["k\x00"]), ("names", ["n\x7f"])],
    "mongod_kmip_config": [
        ("key_identifier", "k\x00"),
        ("key_identifier", "k\x1b[31m"),
        ("key_state_polling_seconds", 2**31),
        ("key_state_polling_seconds", -(2**31) - 1),
        ("cipher_mode", "AES"),
        ("activate_keys", "maybe"),
        ("path", "/etc/mongod\x00.conf"),
        ("mode", "0999"),
        ("owner", "mongod\x00"),
        ("group", "g\x01"),
        ("db_path", "/var/lib/mongo\x00"),
        ("service_user", "mongod\x00"),
        ("state", "enabled"),
        ("backup", "maybe"),
        ("check_files", "maybe"),
        ("replace_key_management", "maybe"),
    ],
    "mongod_member_stepdown": [
        ("step_down_secs", 0),
        ("step_down_secs", -10),
        ("step_down_secs", 2**31),
        ("secondary_catch_up_period_secs", -1),
        ("secondary_catch_up_period_secs", 2**31),
        ("wait_for_new_primary", "maybe"),
        *WAIT_CASES,
    ],
    "mongod_replset_info": [
        ("seeds", [""]),
        ("seeds", ["db 2:27017"]),
        ("seeds", ["mongodb://db2:27017"]),
        ("member", "db1\x00:27017"),
        ("wait_for", "forever"),
        ("not_member", "maybe"),
        ("max_lag_seconds", -1),
        ("max_lag_seconds", "ten"),
        ("watch_service", "mongod\n.service"),
        ("watch_service", "mongod.service"),  # without wait_for=member_caught_up
        ("watch_config", "/etc/mongod\x00.conf"),
        ("watch_config", "/etc/mongod.conf"),  # without watch_service
        *WAIT_CASES,
    ],
    "mongod_encryption_info": [
        ("log_scan_bytes", 0),
        ("log_scan_bytes", -1),
        ("log_scan_bytes", 2**31),
        ("config", "/etc/mongod\x00.conf"),
        ("query_server", "maybe"),
        ("query_kmip", "maybe"),
    ],
    "mongod_member_info": [("fail_on_unreachable", "maybe")],
    "mongod_conversion_info": [
        ("config", "/etc/mongod\x00.conf"),
        ("db_path", "/var/lib/mongo\x00"),
        ("copy_rate_mib_per_second", 0),
        ("copy_rate_mib_per_second", -1),
        ("copy_rate_mib_per_second", "nan"),
        ("sync_startup_seconds", -1),
        ("sync_startup_seconds", "inf"),
        ("oplog_window_seconds", -1),
        ("oplog_window_seconds", "nan"),
        ("read_oplog_window", "maybe"),
        ("oplog_window_margin", 0.5),
        ("disk_headroom", 0.9),
    ],
    "mongod_dbpath": [
        ("state", "gone"),
        ("config", "/etc/mongod\x00.conf"),
        ("db_path", "/var/lib/mongo\x00"),
        ("service_name", "mongod\n.service"),
    ],
}
#: (option, bad value): the mongod connection options, for every module that takes them
MONGOD_CASES: list[tuple[str, Any]] = [
    ("login_host", ""),
    ("login_host", " "),
    ("login_host", "db 1"),
    ("login_host", "mongodb://db1"),
    ("login_host", "db1\x00"),
    ("login_port", 0),
    ("login_port", -1),
    ("login_port", 70000),
    ("timeout_ms", 0),
    ("timeout_ms", -1),
    ("timeout_ms", 2**31),
    ("login_user", "admin"),  # without a password
    ("login_password", SECRET),  # without a user
    ("login_password", SECRET + "\x00"),
    ("login_database", ""),
    ("tls_ca_file", "/nonexistent/ca.pem"),
    ("tls_ca_file", ""),
    ("tls_certificate_key_file", "/nonexistent/client.pem"),
    ("tls_certificate_key_file_password", SECRET),  # without the key file
    ("tls", "maybe"),
    ("tls_allow_invalid_hostnames", "maybe"),
]
ROTATE_CASES: list[tuple[str, Any]] = [
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", 10**13),
    ("config", "/etc/mongod\x00.conf"),
    ("binary", "/usr/bin/mongod\x07"),
    ("service_user", "mongod\x00"),
    ("service_name", "mongod\n.service"),
    ("environment_file", "/etc/default/mongod\x00"),
    ("new_key_identifier", "k\x00"),
    ("current_key_identifier", "k\x1b"),
    ("remove_leftover_rotation_dir", "maybe"),
]


def bad_input_cases() -> list[tuple[str, str, Any]]:
    """(module name, option, bad value) for every case of the table."""
    table: list[tuple[str, str, Any]] = []
    for module in KMIP_MODULES:
        for option, value in [*KMIP_CASES, *SESSION_CASES, *OWN_CASES.get(module, [])]:
            table.append((module, option, value))
    for option, value in [*KMIP_CASES, *OWN_CASES["mongod_kmip_config"]]:
        table.append(("mongod_kmip_config", option, value))
    for module in MONGOD_MODULES:
        for option, value in [*MONGOD_CASES, *OWN_CASES.get(module, [])]:
            table.append((module, option, value))
    for option, value in OWN_CASES["mongod_dbpath"]:
        table.append(("mongod_dbpath", option, value))
    for option, value in ROTATE_CASES:
        table.append(("mongod_rotate_master_key", option, value))
    return table
