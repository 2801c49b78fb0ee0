# -*- coding: utf-8 -*-
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
    type: list
    elements: str
  port:
    description:
      - TCP port of every KMIP server (mongod has one port for all of them).
      - When not set, mongod's default C(5696) is used (and not written to mongod.conf).
      - 0 to 65535.
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
      - Never shown in output, diffs or logs.
    type: str
  connect_retries:
    description:
      - Extra passes over the whole O(server_name) list after the first one fails
        (C(security.kmip.connectRetries)); total passes are retries + 1.
      - 0 or more. When not set, mongod's default C(0) is used.
    type: int
  connect_timeout_ms:
    description:
      - Time limit in milliseconds of each attempt against one server, covering name
        resolution, TCP connect, TLS handshake and the first KMIP exchange
        (C(security.kmip.connectTimeoutMS)).
      - At least 1000. When not set, mongod's default C(5000) is used.
    type: int
"""
