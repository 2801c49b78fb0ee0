# Copyright: kmipops.psmdb contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the kmipops.psmdb collection: not a public API. It may change or go away in any
# release; other collections and stand-alone modules must not import it.
"""Read a mongod.conf, and edit its ``security`` section keeping every other byte.

Every module that reads mongod.conf (``mongod_kmip_config`` to edit it, ``kmip_server_info`` to
take the KMIP settings from it) goes through ``MongodConf``, so a file is judged the same way
everywhere.

ruamel.yaml parses the whole file (so it is known to be valid YAML, and the parser, not a
regular expression, says where each top-level key starts). Only the lines of the
``security:`` block are replaced: that block is parsed again on its own in round-trip mode,
edited, and dumped back with the file's indentation, so its comments survive too. Lines
outside the block (other keys, their comments, flow style, anchors, the line endings, a
``...`` end marker) are copied as they were.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from collections.abc import Callable, MutableMapping
from typing import Any

from ansible_collections.kmipops.psmdb.plugins.module_utils._common.deps import RUAMEL_YAML
from ansible_collections.kmipops.psmdb.plugins.module_utils._common.errors import InvalidOptionError
from ansible_collections.kmipops.psmdb.plugins.module_utils._mongod.security import (
    same_mapping,
    to_plain,
    yaml_dumper,
)

with RUAMEL_YAML.importing():
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.util import load_yaml_guess_indent

SECTION = "security"
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
_MARKER = re.compile(r"^(---|\.\.\.)(\s|$)")

#: edits the ``security`` mapping in place (it may be emptied, which removes the block)
SecurityEditor = Callable[[MutableMapping[str, Any]], None]


@dataclasses.dataclass
class _Block:
    start: int  # index of the ``security:`` line
    end: int  # one past its last content line
    column: int


class MongodConf:
    """One mongod.conf text. ``edit_security`` returns the new text; nothing is written here.

    ``option`` is the module option that names the file: every refusal is said against it.
    """

    def __init__(self, text: str, source: str = "mongod.conf", option: str = "path") -> None:
        RUAMEL_YAML.require()
        self.text = text
        self.source = source
        self.option = option
        self.lines: list[str] = _LINE.findall(text)
        self.newline = "\r\n" if self.lines and self.lines[0].endswith("\r\n") else "\n"
        self.data = self._load_top_level()

    @classmethod
    def read(cls, path: str, option: str = "path") -> MongodConf:
        """The mongod.conf at ``path``: an existing, readable UTF-8 file."""
        if not os.path.isfile(path):
            raise InvalidOptionError(option, f"{path} does not exist or is not a file")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise InvalidOptionError(option, f"cannot read {path}: {exc.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidOptionError(option, f"{path} is not UTF-8 text") from None
        return cls(text, path, option)

    # -- reading -------------------------------------------------------------------------

    def _load_top_level(self) -> Any:
        yaml = YAML(typ="rt")
        try:
            documents = list(yaml.load_all(self.text))
        except YAMLError as exc:
            raise InvalidOptionError(self.option, f"{self.source} is not valid YAML: {_one_line(exc)}") from None
        documents = [d for d in documents if d is not None]
        if len(documents) > 1:
            raise InvalidOptionError(self.option, f"{self.source} holds several YAML documents; mongod reads one")
        data = documents[0] if documents else CommentedMap()
        if not isinstance(data, CommentedMap):
            raise InvalidOptionError(
                self.option, f"{self.source} must hold a mapping of mongod options at the top level"
            )
        return data

    @property
    def security(self) -> Any:
        """The ``security`` mapping (ruamel nodes), ``None`` when absent; anything else is refused."""
        security = self.data.get(SECTION)
        if security is not None and not isinstance(security, MutableMapping):
            raise InvalidOptionError(self.option, f"security in {self.source} must be a mapping")
        return security

    def require_editable(self) -> None:
        """Refuse what ``edit_security`` cannot rewrite without touching other bytes."""
        if self.data and self.data.fa.flow_style():
            raise InvalidOptionError(
                self.option, f"{self.source} is one flow-style mapping ({{...}}); write it in block style to manage it"
            )

    @property
    def db_path(self) -> str | None:
        value = self.value("storage.dbPath")
        return value if isinstance(value, str) else None

    def value(self, dotted: str) -> Any:
        """The plain value at a mongod option name such as ``systemLog.path``; None when unset."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, MutableMapping) or part not in node:
                return None
            node = node[part]
        return to_plain(node)

    # -- editing -------------------------------------------------------------------------

    def edit_security(self, editor: SecurityEditor) -> str:
        """Apply ``editor`` to the security mapping; return the whole new file text."""
        self.require_editable()
        block = self._security_block()
        if block is None:
            security = CommentedMap()
            editor(security)
            if not security:
                return self.text
            wrapper = CommentedMap()
            wrapper[SECTION] = security
            return self._insert(_dump(wrapper, self._document_indent(), None), self.newline)
        root, node, indent, seq_indent = self._parse_block(block)
        original = to_plain(node)
        editor(node)
        if same_mapping(original, node):
            return self.text  # unchanged: keep the original bytes, formatting included
        root[SECTION] = node
        rendered = _dump(root, indent, seq_indent) if node else ""
        if rendered and block.column:
            rendered = "".join(" " * block.column + line for line in _LINE.findall(rendered))
        return self._replace(block, rendered)

    def _security_block(self) -> _Block | None:
        if SECTION not in self.data:
            return None
        keys = list(self.data)
        start, column = self.data.lc.key(SECTION)
        position = keys.index(SECTION)
        limit = self.data.lc.key(keys[position + 1])[0] if position + 1 < len(keys) else len(self.lines)
        end = start + 1
        for index in range(start + 1, limit):
            if _is_content(self.lines[index], column):
                end = index + 1
        return _Block(start=start, end=end, column=column)

    def _parse_block(self, block: _Block) -> tuple[Any, Any, int, int | None]:
        text = "".join(_dedent(line, block.column) for line in self.lines[block.start : block.end])
        text = text.replace("\r\n", "\n")
        try:
            loaded, indent, block_seq_indent = load_yaml_guess_indent(text)
        except YAMLError as exc:
            # e.g. an alias whose anchor is outside the section
            raise InvalidOptionError(
                self.option, f"the security section of {self.source} cannot be edited on its own: {_one_line(exc)}"
            ) from None
        node = loaded.get(SECTION)
        if node is None:
            node = CommentedMap()
        if not isinstance(node, CommentedMap):
            raise InvalidOptionError(self.option, f"security in {self.source} must be a mapping")
        nested_indent = _child_indent(loaded)
        return loaded, node, nested_indent or indent or self._document_indent(), block_seq_indent

    def _document_indent(self) -> int:
        for key in self.data:
            child = self.data[key]
            if isinstance(child, CommentedMap) and child and not child.fa.flow_style():
                found = _child_indent_of(self.data, key, child)
                if found:
                    return found
        return 2

    def _replace(self, block: _Block, rendered: str) -> str:
        rendered = _with_newline(rendered, self.newline)
        return "".join(self.lines[: block.start]) + rendered + "".join(self.lines[block.end :])

    def _insert(self, rendered: str, newline: str) -> str:
        """Append the new section at the end of the document (before a ``...`` marker)."""
        at = len(self.lines)
        for index in range(len(self.lines) - 1, -1, -1):
            if self.lines[index].startswith("..."):
                at = index
                break
        head = "".join(self.lines[:at])
        if head and not head.endswith("\n"):
            head += newline
        return head + _with_newline(rendered, newline) + "".join(self.lines[at:])


def _dump(root: Any, indent: int, seq_indent: int | None) -> str:
    stream = io.StringIO()
    yaml_dumper(indent, seq_indent).dump(root, stream)
    return stream.getvalue()


def _dedent(line: str, column: int) -> str:
    indentation = len(line) - len(line.lstrip(" "))
    return line[min(indentation, column) :]


def _child_indent(node: Any) -> int | None:
    for key in node:
        child = node[key]
        if isinstance(child, CommentedMap) and child and not child.fa.flow_style():
            found = _child_indent_of(node, key, child)
            if found:
                return found
    return None


def _child_indent_of(parent: Any, key: Any, child: Any) -> int | None:
    parent_column = parent.lc.key(key)[1]
    child_column = child.lc.key(next(iter(child)))[1]
    return child_column - parent_column if child_column > parent_column else None


def _is_content(line: str, column: int) -> bool:
    """A line that belongs to the block: not blank, not a comment at the key's column or left."""
    stripped = line.strip()
    if not stripped or _MARKER.match(line):
        return False
    indentation = len(line) - len(line.lstrip(" \t"))
    return not (stripped.startswith("#") and indentation <= column)


def _with_newline(text: str, newline: str) -> str:
    return text.replace("\n", newline) if newline != "\n" else text


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`")


def _one_line(exc: Exception) -> str:
    """Parser problem and position only: the excerpt of the offending line could hold a secret,
    and so could the parser's own words (``found duplicate key "x" with value "<password>"``):
    every quoted part of them is dropped."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    problem = _QUOTED.sub("(...)", str(problem))
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"
