"""A small YAML reader for mongod.conf, with yaml-cpp's habit of keeping every scalar a string.

mongod reads its config with yaml-cpp and converts each scalar to the option's declared type
only when it reads that option; doing the same here lets ``options`` apply mongod's type
rules. The emulator must run on a bare Debian python3 plus pykmip/cryptography/pymongo, so
no YAML library is assumed. Supported: block mappings and sequences, plain/single/double
quoted scalars, comments, empty/simple flow collections, ``---``/``...`` markers. Anything
else raises ``YamlError`` instead of being misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Node = dict[str, Any] | list[Any] | str | None


class YamlError(ValueError):
    pass


@dataclass
class _Line:
    number: int
    indent: int
    text: str


_KEY_RE = re.compile(r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\-?:][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+|$)""")


def parse(text: str) -> dict[str, Any]:
    """Parse a mongod.conf; an empty document is an empty mapping."""
    lines = _logical_lines(text)
    if not lines:
        return {}
    node, index = _parse_block(lines, 0, lines[0].indent)
    if index != len(lines):
        line = lines[index]
        raise YamlError(f"line {line.number}: unexpected indentation")
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise YamlError("the top level of a config file must be a mapping")
    return node


def _logical_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped_right = _strip_comment(raw).rstrip()
        if not stripped_right.strip():
            continue
        if stripped_right.strip() in ("---", "..."):
            continue
        leading = stripped_right[: len(stripped_right) - len(stripped_right.lstrip())]
        if "\t" in leading:
            raise YamlError(f"line {number}: tabs are not allowed for indentation")
        lines.append(_Line(number, len(leading), stripped_right.strip()))
    return lines


def _strip_comment(line: str) -> str:
    quote: str | None = None
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                continue
        elif char in "'\"" and (position == 0 or line[position - 1] in " \t:-[{,"):
            quote = char
        elif char == "#" and (position == 0 or line[position - 1] in " \t"):
            return line[:position]
    return line


def _parse_block(lines: list[_Line], index: int, indent: int) -> tuple[Node, int]:
    if lines[index].text.startswith("- ") or lines[index].text == "-":
        return _parse_sequence(lines, index, indent)
    if _KEY_RE.match(lines[index].text):
        return _parse_mapping(lines, index, indent)
    if index + 1 < len(lines) and lines[index + 1].indent >= indent:
        raise YamlError(f"line {lines[index].number}: multi-line scalars are not supported")
    return _scalar(lines[index].text, lines[index].number), index + 1


def _parse_mapping(lines: list[_Line], index: int, indent: int) -> tuple[dict[str, Any], int]:
    mapping: dict[str, Any] = {}
    while index < len(lines) and lines[index].indent == indent:
        line = lines[index]
        match = _KEY_RE.match(line.text)
        if not match:
            raise YamlError(f"line {line.number}: expected 'key: value'")
        key = _unquote(match.group("key").strip(), line.number)
        if key in mapping:
            raise YamlError(f"line {line.number}: duplicate key {key!r}")
        rest = line.text[match.end() :].strip()
        index += 1
        if rest:
            if rest in ("|", ">", "|-", ">-") or rest.startswith(("&", "*", "!")):
                raise YamlError(f"line {line.number}: block scalars, anchors and tags are not supported")
            mapping[key] = _scalar(rest, line.number)
        elif index < len(lines) and lines[index].indent > indent:
            mapping[key], index = _parse_block(lines, index, lines[index].indent)
        elif index < len(lines) and lines[index].indent == indent and lines[index].text.startswith("-"):
            # a sequence may sit at the same indentation as its key
            mapping[key], index = _parse_sequence(lines, index, indent)
        else:
            mapping[key] = None
    if index < len(lines) and lines[index].indent > indent:
        raise YamlError(f"line {lines[index].number}: unexpected indentation")
    return mapping, index


def _parse_sequence(lines: list[_Line], index: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while index < len(lines) and lines[index].indent == indent and lines[index].text.startswith("-"):
        line = lines[index]
        rest = line.text[1:].strip()
        index += 1
        if not rest:
            if index < len(lines) and lines[index].indent > indent:
                item, index = _parse_block(lines, index, lines[index].indent)
                items.append(item)
            else:
                items.append(None)
        elif _KEY_RE.match(rest):
            raise YamlError(f"line {line.number}: mappings inside sequences are not supported")
        else:
            items.append(_scalar(rest, line.number))
    return items, index


def _scalar(text: str, number: int) -> Node:
    if text in ("~", "null", "Null", "NULL"):
        return None
    if text.startswith("{") or text.startswith("["):
        return _flow(text, number)
    return _unquote(text, number)


def _flow(text: str, number: int) -> Node:
    closing = "}" if text.startswith("{") else "]"
    if not text.endswith(closing):
        raise YamlError(f"line {number}: multi-line flow collections are not supported")
    body = text[1:-1].strip()
    parts = [part.strip() for part in body.split(",")] if body else []
    if any(part.startswith(("{", "[")) for part in parts):
        raise YamlError(f"line {number}: nested flow collections are not supported")
    if closing == "]":
        return [_unquote(part, number) for part in parts]
    mapping: dict[str, Any] = {}
    for part in parts:
        key, separator, value = part.partition(":")
        if not separator:
            raise YamlError(f"line {number}: expected 'key: value' in a flow mapping")
        mapping[_unquote(key.strip(), number)] = _scalar(value.strip(), number) if value.strip() else None
    return mapping


def _unquote(text: str, number: int) -> str:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise YamlError(f"line {number}: unterminated double-quoted string")
        body = text[1:-1]
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "0": "\0"}
        out: list[str] = []
        position = 0
        while position < len(body):
            char = body[position]
            if char == "\\" and position + 1 < len(body):
                nxt = body[position + 1]
                if nxt not in escapes:
                    raise YamlError(f"line {number}: unsupported escape \\{nxt}")
                out.append(escapes[nxt])
                position += 2
                continue
            out.append(char)
            position += 1
        return "".join(out)
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise YamlError(f"line {number}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    return text
