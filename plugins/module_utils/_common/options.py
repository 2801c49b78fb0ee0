# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Checks of option values that Ansible's argument spec cannot express: integer bounds, text
without NUL or control characters, host names.

The bounds themselves live next to the argument specs that own the options (``OPTION_BOUNDS``
of the base classes in ``_common/module.py``, ``_kmip/module.py``, ``_mongod/module.py``; the
KMIP ones in ``_kmip/settings.py``, shared with the filter and mongod.conf). Messages follow
``option X: what is wrong (allowed range)`` and never echo the value of a text option, which
may be a secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError

#: the largest value of a C ``int``: mongod parses its integer options as 32-bit ints
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
#: a TCP port an operator can connect to
PORT_MIN, PORT_MAX = 1, 65535


@dataclasses.dataclass(frozen=True)
class IntBound:
    """Allowed range of an integer option; ``why`` says whose limit it is (shown in messages)."""

    minimum: int | None = None
    maximum: int | None = None
    why: str = ""

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            text = f"{self.minimum} to {self.maximum}"
        elif self.minimum is not None:
            text = f"{self.minimum} or more"
        else:
            text = f"{self.maximum} or less"
        return f"{text}{', ' + self.why if self.why else ''}"

    def check(self, option: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            kind = type(value).__name__
            raise InvalidOptionError(option, f"must be an integer, got {kind} (allowed: {self.describe()})")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise InvalidOptionError(option, f"{value} is out of range (allowed: {self.describe()})")


#: a port of a service (KMIP server, mongod)
PORT_BOUND = IntBound(PORT_MIN, PORT_MAX, "a TCP port")


def check_bounds(params: Mapping[str, Any], bounds: Mapping[str, IntBound]) -> None:
    """Raise ``InvalidOptionError`` for the first option outside its bound."""
    for option, bound in bounds.items():
        bound.check(option, params.get(option))


def check_text(option: str, value: Any, *, secret: bool = False) -> None:
    """Text must hold no NUL byte and no control character (a path, a name, a password)."""
    if not isinstance(value, str):
        return
    if "\x00" in value:
        raise InvalidOptionError(option, "contains a NUL byte, which no file name, host name or mongod option may hold")
    bad = next((ch for ch in value if _is_control(ch)), None)
    if bad is not None:
        where = "" if secret else f" at position {value.index(bad) + 1}"
        raise InvalidOptionError(
            option, f"contains the non-printable character U+{ord(bad):04X}{where}; remove it (allowed: printable text)"
        )


def check_texts(params: Mapping[str, Any], spec: Mapping[str, Mapping[str, Any]]) -> None:
    """``check_text`` on every text option of ``spec`` (str, path, and lists of them)."""
    for option, option_spec in spec.items():
        value = params.get(option)
        if value is None:
            continue
        kind = option_spec.get("type", "str")
        secret = bool(option_spec.get("no_log"))
        if kind in ("str", "path"):
            check_text(option, value, secret=secret)
        elif kind == "list" and option_spec.get("elements") in ("str", "path") and isinstance(value, list):
            for item in value:
                check_text(option, item, secret=secret)


_SCHEMES = ("://",)
_HOST_FORBIDDEN = set("/\\?#@,;")


def check_host(option: str, value: Any, *, entry: int | None = None) -> None:
    """A host name or address as mongod and the OS take it: not empty, no space, no URL."""
    label = f"entry {entry}" if entry is not None else "the host"
    if not isinstance(value, str) or not value:
        raise InvalidOptionError(option, f"{label} is empty (allowed: a host name or an IP address)")
    check_text(option, value)
    if any(ch.isspace() for ch in value):
        raise InvalidOptionError(
            option, f"{label} ({value!r}) contains whitespace (allowed: a host name or an IP address, no spaces)"
        )
    if any(marker in value for marker in _SCHEMES):
        raise InvalidOptionError(
            option, f"{label} ({value!r}) is a URL; give the host name or IP address only, without a scheme"
        )
    bad = sorted(set(value) & _HOST_FORBIDDEN)
    if bad:
        raise InvalidOptionError(
            option,
            f"{label} ({value!r}) contains {' '.join(repr(c) for c in bad)} (allowed: a host name or an IP address)",
        )


def check_hosts(option: str, values: Iterable[Any]) -> None:
    for index, value in enumerate(values):
        check_host(option, value, entry=index + 1)


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0
