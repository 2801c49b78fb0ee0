#!/usr/bin/python
# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kmip_server_info
short_description: Check from a mongod host that mongod could use its KMIP servers and master key
version_added: "0.1.0"
description:
  - Connects to every KMIP server of O(server_name) from the host the module runs on, exactly as mongod
    connects (same TLS settings, host name check, timeout, client identity), concurrently, and reports for
    each one TCP and TLS results and latencies, the negotiated TLS version, the server certificate and the
    answer to what mongod sends first at start, Get Attributes (State) of the key.
  - Without a key identifier that Get Attributes asks for a random identifier that exists nowhere. Item Not
    Found proves what mongod needs, that the server answers KMIP 1.0 and lets this identity read keys; any
    other failure (for example Permission Denied) makes the server unusable, as it would for mongod.
  - For information only, it also asks for the operations offered (Query) and, when O(kmip_version) is not
    1.0, the protocol versions (Discover Versions, which KMIP 1.0 does not have). PSMDB sends neither, so a
    least-privilege KMS may refuse them (for example a HashiCorp Vault KMIP role granted only
    C(operation_register), C(operation_activate), C(operation_get) and C(operation_get_attributes)).
    A refusal, whatever its result reason, is returned in RV(notes) and is never a problem.
  - Reports the client certificate (subject, days left, extendedKeyUsage clientAuth, whether the key matches
    the certificate, whether the password opens it).
  - Computes RV(selected_server), the server mongod would use (the first in order that works), and with
    O(key_identifier) does what mongod does at start on it (Get Attributes State, then Get) and reports
    whether mongod could use the key. The key bytes are never returned.
  - With a key identifier, a working server that answers Item Not Found for the key the selected server
    holds is a warning in RV(problems), because mongod moves on to the next server when one fails (a timed-out key
    state poll is enough) but takes Item Not Found for an absent key and shuts down. Every server of
    O(server_name) must serve the same keys (one KMS cluster).
  - Options can be read from an existing mongod.conf with O(mongod_config); options given to the module
    override them.
  - Fails when mongod could not start with this setup, unless O(fail_on_problems=false). Options that
    cannot be valid (for example a timeout below 1000, a missing CA file, a PEM without a private key, a
    wrong password) always fail the task before any connection.
author:
  - kmipops.psmdb contributors (@kmipops)
extends_documentation_fragment:
  - kmipops.psmdb.kmip
  - kmipops.psmdb.kmip.session
  - kmipops.psmdb.attributes
  - kmipops.psmdb.attributes.actiongroup_kmip
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
options:
  mongod_config:
    description:
      - Path of a mongod.conf on the managed host whose C(security.kmip) section supplies the options not
        given to the module (including C(keyIdentifier)).
    type: path
  key_identifier:
    description:
      - KMIP unique identifier of the master key to check as mongod would at start
        (C(security.kmip.keyIdentifier)).
    type: str
  fail_on_problems:
    description:
      - Fail the task when a problem would keep mongod from starting (an entry of RV(problems) with severity
        C(error)). With V(false) the report is returned and RV(ok) tells the outcome.
    type: bool
    default: true
seealso:
  - module: kmipops.psmdb.kmip_key
  - module: kmipops.psmdb.kmip_key_info
"""

EXAMPLES = r"""
- name: Prove that every mongod can reach its KMIP servers and read its master key
  kmipops.psmdb.kmip_server_info:
    mongod_config: /etc/mongod.conf
  register: kmip_check
  vars:
    ansible_python_interpreter: "{{ kmipops_python_interpreter }}"

- name: Check a new setup before writing it to mongod.conf, without failing
  kmipops.psmdb.kmip_server_info:
    server_name: [kmip1.example.com, kmip2.example.com]
    port: 5696
    server_ca_file: /etc/mongod/kmip-ca.pem
    client_certificate_file: /etc/mongod/kmip-client.pem
    client_certificate_password: "{{ vault_kmip_client_password }}"
    connect_timeout_ms: 3000
    key_identifier: "42"
    fail_on_problems: false
  register: kmip_check

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ kmip_check.problems | map(attribute='message') | list }}"
  when: not kmip_check.ok
"""

RETURN = r"""
ok:
  description: True when mongod could start with this setup (no problem of severity C(error)).
  returned: always
  type: bool
problems:
  description: What is wrong or degraded, each with where (a server host:port or an option), severity
    (C(error) or C(warning)) and a sentence.
  returned: always
  type: list
  elements: dict
  sample: [{"where": "kmip1.example.com:5696", "severity": "warning", "message": "KMIP server ...: timed out ..."}]
notes:
  description: Information that is not a problem, each with where (a server host:port) and a sentence, for
    example that a server declined Query, which PSMDB never sends.
  returned: always
  type: list
  elements: dict
  sample: [{"where": "kmip1.example.com:5696", "message": "the server declined Query (Permission Denied); ..."}]
selected_server:
  description: The server mongod would use (host:port), or null when none works.
  returned: always
  type: str
  sample: kmip2.example.com:5696
servers:
  description: One entry per server, in the order of server_name.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: host:port as configured.
      type: str
    resolved_address:
      description: The first resolved address, the one mongod connects to.
      type: str
    ok:
      description: Whether mongod could use this server (its Get Attributes was answered, Item Not Found
        included).
      type: bool
    attempts:
      description: Connection attempts made (passes of connect_retries).
      type: int
    elapsed_ms:
      description: Wall time of the last attempt on this server, from name resolution to the end of the last
        exchange (Query).
      type: float
    error:
      description: Why the server cannot be used.
      type: str
    error_kind:
      description: Machine-readable kind of the error (dns, connection_refused, timeout, tls_verify,
        tls_rejected, not_kmip, kmip_protocol, and permission_denied, not_supported or kmip_operation when
        mongod's Get Attributes failed).
      type: str
    tcp:
      description: C(ok) and C(latency_ms) of the TCP connect.
      type: dict
    tls:
      description: C(ok), C(latency_ms), negotiated C(version) and C(cipher) of the TLS handshake.
      type: dict
    certificate:
      description: The server certificate (subject, issuer, serial_number, not_before, not_after, days_left,
        expired, chain_ok, hostname_match); after a failed verification only chain_ok, hostname_match and
        verify_error.
      type: dict
    kmip:
      description:
        - C(version_used); C(mongod_exchange), mongod's first exchange (C(operation) Get Attributes,
          C(key_identifier) or null for the identifier that exists nowhere, C(result) the KMIP result, e.g.
          C(Success), C(Item Not Found), C(Permission Denied)); C(latency_ms) of that exchange.
        - C(operations) (Query) and C(psmdb_operations_missing), null when Query was declined;
          C(discover_versions_supported), C(versions), C(offers_1_0), null when Discover Versions was not
          sent (always with kmip_version 1.0).
        - C(declined), what the server refused of Query and Discover Versions, each with C(operation),
          C(reason) (the KMIP result reason, null when the server ended the session instead) and
          C(message).
      type: dict
client_certificate:
  description: The client identity (path, subject, issuer, serial_number, not_after, days_left, expired,
    chain_length, client_auth_eku, key_encrypted, password_opens_key, common_name).
  returned: always
  type: dict
key:
  description: mongod's start sequence on the selected server for O(key_identifier) (key_identifier, exists,
    state, object_type, key_format_type, algorithm, length, usable, problems). Never the key bytes.
  returned: when a key identifier is given or found in mongod_config and a server works
  type: dict
settings:
  description: The effective options (module options over mongod_config, mongod defaults applied),
    without the password.
  returned: always
  type: dict
error_kind:
  description:
    - Why the task failed, for playbooks to branch on - C(problems) (mongod could not start with this setup, see
      RV(problems); the whole report is returned), C(invalid_option) (an option, a file or O(mongod_config) that
      cannot be valid, named in C(option), found before any connection), C(missing_dependency) (a Python library
      missing on the host).
    - Each server's own failure is RV(servers[].error_kind).
    - C(internal_error) - an unexpected exception (a bug) - its type and location, never its text; the stack with -vvv.
  returned: on failure
  type: str
  sample: problems
"""

from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import KmipOpsError
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip import probe as kmip_probe
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.client import KmipClient
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.module import KmipSessionModule
from ansible_collections.kmipops.psmdb.plugins.module_utils._kmip.settings import KmipSettings
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.conf import MongodConf
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import to_plain
from ansible_collections.kmipops.psmdb.plugins.module_utils._tls.certificates import (
    client_identity_problems,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "mongod_config": {"type": "path"},
    "key_identifier": {"type": "str"},
    "fail_on_problems": {"type": "bool", "default": True},
}


def settings_from_mongod_config(path: str) -> KmipSettings:
    """The KMIP settings of a mongod.conf, read by the model mongod_kmip_config edits it with."""
    return KmipSettings.from_mongod_security(to_plain(MongodConf.read(path, option="mongod_config").security))


def effective_settings(settings: KmipSettings) -> dict[str, Any]:
    return {
        "server_name": settings.server_name,
        "port": settings.effective_port,
        "server_ca_file": settings.server_ca_file,
        "client_certificate_file": settings.client_certificate_file,
        "client_certificate_password_set": settings.client_certificate_password is not None,
        "connect_retries": settings.effective_connect_retries,
        "connect_timeout_ms": settings.effective_connect_timeout_ms,
        "key_identifier": settings.key_identifier,
    }


def run(module: KmipSessionModule) -> dict[str, Any]:
    params = module.params
    settings = module.kmip_settings()
    if params["mongod_config"]:
        from_file = settings_from_mongod_config(params["mongod_config"])
        if from_file.client_certificate_password:
            # a secret read from the file is as secret as the option: never in the output
            module.no_log_values.add(from_file.client_certificate_password)
        settings = settings.merged_over(from_file)
    client = KmipClient(settings, params["kmip_version"])

    problems = [
        kmip_probe.Problem("client_certificate_file", text) for text in client_identity_problems(client.identity)
    ]
    days_left = client.identity.certificate["days_left"]
    if 0 <= days_left < kmip_probe.EXPIRY_WARNING_DAYS:
        problems.append(
            kmip_probe.Problem(
                "client_certificate_file", f"the client certificate expires in {days_left} days", "warning"
            )
        )

    reports = kmip_probe.probe_all(client, settings.key_identifier)
    try:
        selected = next((r for r in reports if r.ok), None)
        problems.extend(kmip_probe.server_problems(reports, selected, client.kmip_version))
        result: dict[str, Any] = {
            "changed": False,
            "servers": [r.as_result() for r in reports],
            "selected_server": selected.endpoint.label if selected else None,
            "client_certificate": client.identity.as_result(),
            "settings": effective_settings(settings),
        }
        if selected is None:
            problems.append(
                kmip_probe.Problem(
                    "server_name",
                    "KMIP sessions failed for all the server hosts: mongod would not start",
                )
            )
        elif settings.key_identifier:
            try:
                check = kmip_probe.check_selected_key(client, selected, settings.key_identifier)
                result["key"] = check.as_result()
                problems.extend(kmip_probe.Problem("key_identifier", text) for text in check.problems)
            except KmipOpsError as error:
                result["key"] = {"key_identifier": settings.key_identifier, "usable": False, "error": str(error)}
                problems.append(kmip_probe.key_check_problem("key_identifier", error))
    finally:
        for report in reports:
            if report.session is not None:
                report.session.close()
    result["problems"] = [p.as_result() for p in problems]
    result["notes"] = [n.as_result() for n in kmip_probe.server_notes(reports)]
    result["ok"] = not any(p.severity == "error" for p in problems)
    return result


def main() -> None:
    module = KmipSessionModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = module.run_or_fail(run)
    if not result["ok"] and module.params["fail_on_problems"]:
        errors = [p["message"] for p in result["problems"] if p["severity"] == "error"]
        module.fail_json(
            msg="mongod could not start with this KMIP setup: " + " | ".join(errors), error_kind="problems", **result
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
