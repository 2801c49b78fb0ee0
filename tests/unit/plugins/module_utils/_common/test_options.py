# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_common.options: integer bounds, text without NUL/control characters, host names."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.options import (
    INT32_MAX,
    PORT_BOUND,
    IntBound,
    check_host,
    check_text,
    check_texts,
)


@pytest.mark.parametrize(
    "bound, value, fragment",
    [
        (PORT_BOUND, 0, "0 is out of range (allowed: 1 to 65535, a TCP port)"),
        (PORT_BOUND, 70000, "70000 is out of range (allowed: 1 to 65535"),
        (IntBound(1000, INT32_MAX), 2**31, "2147483648 is out of range (allowed: 1000 to 2147483647)"),
        (IntBound(0, None), -1, "(allowed: 0 or more)"),
        (IntBound(None, 10), 11, "(allowed: 10 or less)"),
        (PORT_BOUND, True, "must be an integer, got bool"),
        (PORT_BOUND, "80", "must be an integer, got str"),
    ],
)
def test_a_value_out_of_bounds_names_the_option_and_the_range(bound: IntBound, value: Any, fragment: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        bound.check("opt", value)
    assert str(caught.value).startswith("opt: ") and fragment in str(caught.value)


@pytest.mark.parametrize("value", [None, 1, 65535])
def test_a_value_in_bounds_passes(value: Any) -> None:
    PORT_BOUND.check("port", value)


@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "a\x1b[31m", "a\x7f", "a\x85"])
def test_nul_and_control_characters_are_refused(value: str) -> None:
    with pytest.raises(InvalidOptionError, match=r"^opt: contains"):
        check_text("opt", value)


def test_a_secret_is_never_quoted_nor_located() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        check_text("pw", "S3cret\x01", secret=True)
    assert "S3cret" not in str(caught.value) and "position" not in str(caught.value)


def test_texts_of_lists_and_paths_are_checked_by_their_spec() -> None:
    spec = {"a": {"type": "list", "elements": "str"}, "b": {"type": "path"}, "c": {"type": "int"}}
    check_texts({"a": ["ok"], "b": "/ok", "c": 1}, spec)
    with pytest.raises(InvalidOptionError, match=r"^a: "):
        check_texts({"a": ["ok", "b\x00"]}, spec)
    with pytest.raises(InvalidOptionError, match=r"^b: "):
        check_texts({"b": "/x\x00"}, spec)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("", "is empty"),
        (" ", "whitespace"),
        ("db 1", "whitespace"),
        ("https://kmip", "is a URL"),
        ("mongodb://db1", "is a URL"),
        ("db1\x00", "NUL"),
        ("kmip/5696", "contains '/'"),
        ("user@db1", "contains '@'"),
        (None, "is empty"),
    ],
)
def test_bad_host_names(value: Any, fragment: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        check_host("login_host", value)
    assert str(caught.value).startswith("login_host: ") and fragment in str(caught.value)


@pytest.mark.parametrize("value", ["localhost", "db1.example.com", "127.0.0.1", "::1", "fe80::1%eth0", "[::1]"])
def test_good_host_names(value: str) -> None:
    check_host("login_host", value)
