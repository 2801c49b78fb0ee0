# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the mongod_member_* modules reach one mongod (direct connection, pymongo); the argument
    # spec is MONGOD_CONNECTION_ARGSPEC in module_utils/_mongod/member.py.
    DOCUMENTATION = r"""
options:
  host:
    description: Address of the member, usually the local one.
    type: str
    default: localhost
  port:
    description: Port of the member.
    type: int
    default: 27017
  username:
    description:
      - User to authenticate as (SCRAM). No authentication when not set.
      - The privileges each module needs are in its description.
    type: str
  password:
    description: Password of O(username). Never shown.
    type: str
  auth_source:
    description: Database of O(username).
    type: str
    default: admin
  tls:
    description: Connect with TLS. Implied by O(tls_ca_file) or O(tls_certificate_key_file).
    type: bool
    default: false
  tls_ca_file:
    description: CA certificates that sign the member's certificate.
    type: path
  tls_certificate_key_file:
    description: Client certificate and key (one PEM) for x.509 or C(requireTLS) with client certificates.
    type: path
  tls_certificate_key_file_password:
    description: Password of the key in O(tls_certificate_key_file). Never shown.
    type: str
  tls_allow_invalid_hostnames:
    description:
      - Do not check the member's certificate against O(host) (for C(localhost) connections to a
        certificate issued for the host name). The chain is still verified. Explicit only; a
        warning says when it is used.
    type: bool
    default: false
  timeout_ms:
    description: Time limit in milliseconds to reach the member.
    type: int
    default: 5000
"""
