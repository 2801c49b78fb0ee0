# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The KMIP connection options, named after mongod's security.kmip keys in snake_case.
    DOCUMENTATION = r"""
options:
  server_name:
    description:
      - KMIP servers, tried in this order, as mongod tries C(security.kmip.serverName).
      - Each entry is a host name or an IP address; the server certificate must match it
        (SAN or CN), because mongod verifies the host name.
      - mongod keeps them in one comma-separated string and does not trim spaces, so entries
        must not contain spaces or commas.
      - Not a URL (no C(https://)), no C(/), C(@), empty entries, NUL bytes or control characters.
    type: list
    elements: str
  port:
    description:
      - TCP port of every KMIP server (mongod has one port for all of them).
      - When not set, mongod's default C(5696) is used (and not written to mongod.conf).
      - 1 to 65535.
    type: int
  server_ca_file:
    description:
      - PEM file with the CA certificates that sign the KMIP servers' certificates
        (C(security.kmip.serverCAFile)).
      - The certificate chain and the host name of every server are always verified; there
        is no option to turn that off.
    type: path
  client_certificate_file:
    description:
      - One PEM file holding the client private key and its certificate chain, the identity
        mongod presents to the KMIP server (C(security.kmip.clientCertificateFile)).
      - Use the mongod host's own file. On PyKMIP and many other servers a key registered
        with one client certificate can only be used by that certificate, so a key created
        with another identity is invisible to mongod.
    type: path
  client_certificate_password:
    description:
      - Password of the private key in O(client_certificate_file)
        (C(security.kmip.clientCertificatePassword)).
      - Never shown in output, diffs or logs. No NUL byte or control character.
    type: str
  connect_retries:
    description:
      - Extra passes over the whole O(server_name) list after the first one fails
        (C(security.kmip.connectRetries)); total passes are retries + 1.
      - 0 to 2147483647 (mongod reads a 32-bit int). When not set, mongod's default C(0) is used.
    type: int
  connect_timeout_ms:
    description:
      - Time limit in milliseconds of each attempt against one server, covering name
        resolution, TCP connect, TLS handshake and the first KMIP exchange
        (C(security.kmip.connectTimeoutMS)).
      - 1000 to 2147483647 (mongod refuses less and reads a 32-bit int; a larger value in mongod.conf keeps
        it from starting). When not set, mongod's default C(5000) is used.
    type: int
"""

    # Used as kmipops.psmdb.kmip.session by the modules that open KMIP sessions themselves.
    SESSION = r"""
options:
  kmip_version:
    description:
      - KMIP protocol version of every request.
      - PSMDB speaks only KMIP 1.0, so the default checks the server the way mongod uses it.
    type: str
    default: "1.0"
    choices: ["1.0", "1.1", "1.2", "1.3", "1.4", "2.0"]
requirements:
  - Python 3.11 or later on the managed host.
  - pykmip >= 0.11 and cryptography on the managed host. The C(kmipops.psmdb.kmip_prereqs) role installs
    them into a virtualenv and sets the fact C(kmipops_python_interpreter); run the module with
    C(ansible_python_interpreter) set to it.
notes:
  - "The identity trap: on PyKMIP (and many other KMIP servers) only the client certificate that
    registered a key may use it by default. Run this module on the mongod host with mongod's own
    O(client_certificate_file) (C(delegate_to) the mongod host, not the controller), or the keys it
    creates will be invisible to mongod and the keys mongod created invisible to it."
  - Servers are tried as mongod tries them, in the order of O(server_name), O(connect_retries) extra
    passes, each attempt bounded by O(connect_timeout_ms) from name resolution to the end of the
    first KMIP exchange. The first server that works is used for the whole task (one TLS session).
  - The server certificate chain and host name are always verified (TLS 1.2 or later).
"""
