# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``pykmip-server`` with a longer per-connection socket timeout (used by kmiplab.server).

PyKMIP's ``KmipServer.start`` calls ``socket.setdefaulttimeout(10)``, which also bounds every
TLS handshake and request read of a session. On a saturated shared CI machine a handshake
has been seen to need more than 10 s, failing tests for no reason of theirs. This entry point
raises that floor to $KMIPLAB_PYKMIP_SOCKET_TIMEOUT seconds and then runs PyKMIP's own main:
the server code, protocol and policy handling are PyKMIP's, unchanged.
"""

from __future__ import annotations

import os
import socket

from kmip.services.server import server

_original_setdefaulttimeout = socket.setdefaulttimeout


def _setdefaulttimeout_at_least(timeout: float | None) -> None:
    floor = float(os.environ.get("KMIPLAB_PYKMIP_SOCKET_TIMEOUT", "10"))
    _original_setdefaulttimeout(None if timeout is None else max(timeout, floor))


if __name__ == "__main__":
    socket.setdefaulttimeout = _setdefaulttimeout_at_least
    server.main()
