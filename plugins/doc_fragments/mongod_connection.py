# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the mongod_member_* modules reach one mongod (direct connection, pymongo), with
    # community.mongodb's option names; the argument spec is MEMBER_CONNECTION_ARGSPEC in
    # module_utils/_mongod/member.py, owned by the MongodMemberModule base class.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Address of the member, usually the local one.
      - A host name or an IP address; not empty, no spaces, not a URL (no C(mongodb://)). Checked before
        any connection.
      - The same option as in community.mongodb. O(host) is an alias, kept for 0.x.
    type: str
    default: localhost
    aliases: [host]
  login_port:
    description:
      - Port of the member (C(net.port) of its mongod.conf), 27017 unless it says otherwise.
      - 1 to 65535.
      - Not the KMIP port, which is option C(port) of the modules of the C(kmip) action group.
      - O(port) is an alias, kept for 0.x.
    type: int
    default: 27017
    aliases: [port]
  login_user:
    description:
      - User to authenticate as (SCRAM). No authentication when not set or empty.
      - Requires O(login_password).
      - The privileges each module needs are in its description.
      - O(username) is an alias, kept for 0.x.
    type: str
    aliases: [username]
  login_password:
    description:
      - Password of O(login_user). Never shown. Requires O(login_user).
      - O(password) is an alias, kept for 0.x.
    type: str
    aliases: [password]
  login_database:
    description:
      - Database in which O(login_user) is defined (C(authSource)).
      - O(auth_source) is an alias, kept for 0.x.
    type: str
    default: admin
    aliases: [auth_source]
  tls:
    description: Connect with TLS. Implied by O(tls_ca_file) or O(tls_certificate_key_file).
    type: bool
    default: false
  tls_ca_file:
    description: CA certificates that sign the member's certificate. Must be a readable file (checked before any
      connection).
    type: path
  tls_certificate_key_file:
    description: Client certificate and key (one PEM) for x.509 or C(requireTLS) with client certificates. Must be a
      readable file (checked before any connection).
    type: path
  tls_certificate_key_file_password:
    description: Password of the key in O(tls_certificate_key_file). Never shown. Requires O(tls_certificate_key_file).
    type: str
  tls_allow_invalid_hostnames:
    description:
      - Do not check the member's certificate against O(login_host) (for C(localhost) connections to a
        certificate issued for the host name). The chain is still verified. Explicit only; a
        warning says when it is used.
    type: bool
    default: false
  timeout_ms:
    description: Time limit in milliseconds to reach the member. 1 to 2147483647.
    type: int
    default: 5000
"""
