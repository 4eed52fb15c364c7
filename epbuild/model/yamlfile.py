"""Reads a YAML file into plain data plus the line of every key, so errors can point at the line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from epbuild.util.errors import MatrixError, Problem

KeyPath = tuple[str | int, ...]

# The safe constructor decides scalar types (bool, int, null, str) exactly as yaml.safe_load would.
_SCALARS = yaml.constructor.SafeConstructor()


@dataclass
class YamlDocument:
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the deepest key of `path` that the file has (pydantic paths may go deeper)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def format_key(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: Path) -> YamlDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(path, [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise MatrixError(path, [Problem("", f"YAML syntax error: {reason}", line)]) from None
    doc = YamlDocument(data=None)
    problems: list[Problem] = []
    doc.data = _convert(root, (), doc, problems) if root is not None else {}
    if problems:
        raise MatrixError(path, problems)
    return doc


def _convert(node: yaml.Node, path: KeyPath, doc: YamlDocument, problems: list[Problem]) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _SCALARS.construct_object(key_node, deep=True)
            if key in out:
                problems.append(
                    Problem(format_key((*path, key)), "duplicate key (YAML would silently keep the last one)",
                            key_node.start_mark.line + 1)
                )
                continue
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), doc, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), doc, problems) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node)
