# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KMIP side of the controller-side test tools: PyKMIP as one member's own identity.

A member's KMIP client certificate and key are in the test PKI (<pki>/<host>-kmip-client.crt
and .key, CN = host name): that identity owns the member's master keys on PyKMIP. PyKMIP's
client checks the chain but not the server's host name; ``member_kms`` checks it after the
handshake. Not the collection's KMIP layer: these tools judge the collection from outside.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fleet_lib import Fleet, KmipServer
from kmip.core import enums
from kmip.pie.client import ProxyKmipClient

# The PyKMIP test lab's client helpers (tests/kmiplab, outside the collection like these tools).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from kmiplab.client import check_peer_hostname, key_state, register_aes_key

__all__ = ["key_state", "member_kms", "register_aes_key"]
TIMEOUT_S = 60.0  # only against a hung server; a busy 2-core machine is slow


@contextlib.contextmanager
def member_kms(fleet: Fleet, host: str, server: KmipServer) -> Iterator[ProxyKmipClient]:
    """An open PyKMIP client (KMIP 1.0, TLS 1.2) on ``server`` with ``host``'s KMIP identity."""
    pki = Path(fleet.pki_dir)
    with tempfile.TemporaryDirectory(prefix="fleet-kms-") as tmp:
        config_file = os.path.join(tmp, "pykmip.conf")  # empty: keeps PyKMIP away from ~/.pykmip
        Path(config_file).touch()
        client = ProxyKmipClient(
            hostname=server.address,
            port=server.port,
            cert=str(pki / f"{host}-kmip-client.crt"),
            key=str(pki / f"{host}-kmip-client.key"),
            ca=fleet.ca_file,
            ssl_version="PROTOCOL_TLSv1_2",
            config_file=config_file,
            kmip_version=enums.KMIPVersion.KMIP_1_0,
        )
        client.proxy.timeout = TIMEOUT_S  # PyKMIP 0.11 ignores the config file's timeout
        client.open()
        try:
            # mongod checks the server's name (serverName); PyKMIP's client does not
            check_peer_hostname(client.proxy.socket.getpeercert(), server.host)
            yield client
        finally:
            client.close()
