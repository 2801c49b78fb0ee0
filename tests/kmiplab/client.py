# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A direct PyKMIP client on a lab server, for test set-up and checks (not the product's client).

Speaks KMIP 1.0 like mongod. PyKMIP verifies the chain but not the server host name, so
``lab_client`` checks the name itself right after the handshake.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterator
from typing import Any

from kmip.core import enums
from kmip.pie import objects
from kmip.pie.client import ProxyKmipClient

from kmiplab.pki import ClientCert
from kmiplab.server import PyKmipServer


class HostnameMismatchError(Exception):
    """The server certificate does not name the address we connected to."""


def _peer_names(peercert: dict[str, Any]) -> list[tuple[str, str]]:
    return [(kind, value) for kind, value in peercert.get("subjectAltName", ())]


def check_peer_hostname(peercert: dict[str, Any], expected: str) -> None:
    """Exact match of an IP address or DNS name against the certificate's SAN entries."""
    try:
        wanted_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(expected)
    except ValueError:
        wanted_ip = None
    for kind, value in _peer_names(peercert):
        if wanted_ip is not None and kind == "IP Address" and ipaddress.ip_address(value.strip()) == wanted_ip:
            return
        if wanted_ip is None and kind == "DNS" and value.lower() == expected.lower():
            return
    raise HostnameMismatchError(f"server certificate does not name {expected!r}: {_peer_names(peercert)}")


@contextlib.contextmanager
def lab_client(
    server: PyKmipServer,
    client: ClientCert,
    *,
    server_name: str | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
) -> Iterator[ProxyKmipClient]:
    """An open ``ProxyKmipClient`` (KMIP 1.0, TLS 1.2) on ``server`` presenting ``client``.

    The key of ``client.pem`` must be unencrypted (PyKMIP's client cannot take a password).
    ``timeout`` only guards against a hung server: on a saturated 2-core machine a single
    Register has been seen to take 20 s.
    """
    if client.password is not None:
        raise ValueError("client: PyKMIP's ProxyKmipClient cannot open a password-protected key")
    with tempfile.TemporaryDirectory(prefix="kmiplab-client-") as tmp:
        config_file = os.path.join(tmp, "pykmip.conf")  # empty: keeps PyKMIP away from ~/.pykmip
        with open(config_file, "w", encoding="utf-8"):
            pass
        kmip = ProxyKmipClient(
            hostname=server.address,
            port=server.port,
            cert=str(client.pem),
            ca=str(ca_file or server.server_cert.issuer_ca),
            ssl_version="PROTOCOL_TLSv1_2",
            config_file=config_file,
            kmip_version=enums.KMIPVersion.KMIP_1_0,
        )
        kmip.proxy.timeout = timeout  # the config-file timeout is ignored by PyKMIP 0.11
        kmip.open()
        try:
            check_peer_hostname(kmip.proxy.socket.getpeercert(), server_name or server.address)
            yield kmip
        finally:
            kmip.close()


def register_aes_key(kmip: ProxyKmipClient, *, operation_policy_name: str | None = None) -> str:
    """Register a random AES-256 key the way mongod does (raw 32 bytes, Encrypt|Decrypt)."""
    key = objects.SymmetricKey(
        enums.CryptographicAlgorithm.AES,
        256,
        secrets.token_bytes(32),
        masks=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT],
    )
    if operation_policy_name is not None:
        key.operation_policy_name = operation_policy_name
    return str(kmip.register(key))


def key_state(kmip: ProxyKmipClient, uid: str) -> str:
    """The key's KMIP State as PyKMIP names it (``ACTIVE``, ``PRE_ACTIVE``, ...)."""
    _uid, attributes = kmip.get_attributes(uid, ["State"])
    for attribute in attributes:
        if attribute.attribute_name.value == "State":
            return str(attribute.attribute_value.value.name)
    raise LookupError(f"the server returned no State attribute for {uid}")
