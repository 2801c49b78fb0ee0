# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kmiplab: the PyKMIP test lab (PKI, real PyKMIP servers, misbehaving ports, playbook runner).

Import with ``<checkout>/tests`` (the repository's ``tests`` directory) on ``sys.path``.
See tests/kmiplab/README.md.
"""

from __future__ import annotations
