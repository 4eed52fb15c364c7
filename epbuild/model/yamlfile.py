"""Reads a YAML file into plain data plus the line of every key, so errors can point at the line. ruamel.yaml is
epbuild's one YAML reader: every read goes through this module (matrix_edit round-trips with it too); only the
committed pipelines are written by PyYAML's emitter (epbuild/ci/pipelines.py says why)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MantissaNoDotYAML1_1Warning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from epbuild.util.errors import MatrixError, Problem

KeyPath = tuple[str | int, ...]


def _safe_yaml() -> YAML:
    """The safe (plain data only) loader with YAML 1.1's scalars, which matrices have always been read with (`yes`
    is true, `0755` octal)."""
    loader = YAML(typ="safe", pure=True)
    loader.version = (1, 1)
    return loader


def _construct(loader: YAML, node: Node) -> Any:
    """One scalar node's value. ruamel warns that YAML 1.1 wants a dot in `1e3`; it reads it as a float either way,
    and a matrix's answer to a float where a string belongs is a validation error naming the key, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MantissaNoDotYAML1_1Warning)
        return loader.constructor.construct_object(node, deep=True)


def parse_yaml(text: str) -> Any:
    """Plain data (dicts, lists, scalars) from YAML text, read as load_yaml reads a file (no line numbers)."""
    loader = _safe_yaml()
    root = loader.compose(text)
    return _plain(loader, root) if root is not None else None


def _plain(loader: YAML, node: Node) -> Any:
    if isinstance(node, MappingNode):
        return {_construct(loader, k): _plain(loader, v) for k, v in node.value}
    if isinstance(node, SequenceNode):
        return [_plain(loader, item) for item in node.value]
    return _construct(loader, node)


def dump_yaml(data: Any) -> str:
    """Plain data as block-style YAML, keys in their order, that parse_yaml reads back as the same data (the
    `%YAML 1.1` line keeps a string such as `yes` quoted for readers of either YAML version)."""
    dumper = _safe_yaml()
    dumper.default_flow_style = False
    # Keys in the order of `data`. ruamel's YAML.__init__ sets this attribute to None ("default: sort") without an
    # annotation, so mypy infers the type None for it; False is the value its representer reads.
    dumper.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    out = io.StringIO()
    dumper.dump(data, out)
    return out.getvalue()


def is_plain_string(value: str) -> bool:
    """Whether `value`, written unquoted, reads as a string (not a number, bool, null, date or YAML syntax)."""
    try:
        return isinstance(parse_yaml(value), str)
    except YAMLError:
        return False


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
    loader = _safe_yaml()
    try:
        root = loader.compose(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise MatrixError(path, [Problem("", f"YAML syntax error: {reason}", line)]) from None
    doc = YamlDocument(data=None)
    problems: list[Problem] = []
    doc.data = _convert(loader, root, (), doc, problems) if root is not None else {}
    if problems:
        raise MatrixError(path, problems)
    return doc


def _convert(loader: YAML, node: Node, path: KeyPath, doc: YamlDocument, problems: list[Problem]) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node)
            if key in out:
                first = doc.lines[(*path, key)]
                problems.append(
                    Problem(format_key((*path, key)), f"duplicate key: also on line {first} (YAML would silently "
                            "keep the last one)", key_node.start_mark.line + 1)
                )
                continue
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, (*path, key), doc, problems)
        return out
    if isinstance(node, SequenceNode):
        return [_convert(loader, item, (*path, i), doc, problems) for i, item in enumerate(node.value)]
    return _construct(loader, node)
