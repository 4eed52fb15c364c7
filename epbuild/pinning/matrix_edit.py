"""Rewrites one pin of a matrix file in place, keeping its comments and layout (a ruamel.yaml round trip), and
refuses when the round trip would change any other line."""

from __future__ import annotations

import difflib
import io
import tempfile
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from epbuild.model.matrix import LoadedMatrix, load_matrix
from epbuild.model.yamlfile import is_plain_string
from epbuild.util import atomicfs
from epbuild.util.errors import EpbuildError


class MatrixEditError(EpbuildError):
    pass


def _yaml() -> YAML:
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a long line
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _scalar(value: str) -> str:
    """The value as a YAML string: quoted where a plain scalar would read as something else (an all-digit commit)."""
    return value if is_plain_string(value) else DoubleQuotedScalarString(value)


def with_pin(text: str, path: Path, component: str, commit: str, tag: str | None) -> str:
    """The matrix text with components.<component>.commit (and its tag: set, or removed when None) rewritten."""
    rt = _yaml()
    data = rt.load(text)
    pin = (data.get("components") or {}).get(component)
    if pin is None:
        raise MatrixEditError(f"{path}: components.{component}: no such component to rewrite")
    pin["commit"] = _scalar(commit)
    if tag is not None:
        if "tag" in pin:
            pin["tag"] = _scalar(tag)
        else:
            pin.insert(list(pin).index("commit"), "tag", _scalar(tag))
    elif "tag" in pin:
        del pin["tag"]
    out = io.StringIO()
    rt.dump(data, out)
    new = out.getvalue()
    _check_only_pin_lines_changed(text, new, path, component)
    return new


def _check_only_pin_lines_changed(old: str, new: str, path: Path, component: str) -> None:
    changed = [line for line in difflib.ndiff(old.splitlines(), new.splitlines()) if line[:1] in "+-"]
    stray = [line for line in changed if not line[2:].lstrip().startswith(("commit:", "tag:"))]
    if stray or len(changed) > 4:
        raise MatrixEditError(f"{path}: rewriting components.{component} would also change other lines "
                              f"({'; '.join(s.strip() for s in stray[:3])}); edit the pin by hand")


def write_atomically(path: Path, text: str) -> None:
    """Replaces the matrix file in one rename, keeping its mode (a user's 0600 matrix stays private)."""
    atomicfs.write_text(path, text, mode=path.stat().st_mode & 0o777)


def with_edits(text: str, path: Path, edits: list[tuple[tuple[str, ...], object]]) -> str:
    """The matrix text with each (key path, value) set, or removed where the value is None, comments and layout
    kept; refuses when the round trip would change a line that holds none of the edited keys."""
    rt = _yaml()
    data = rt.load(text)
    for keys, value in edits:
        node = data
        for key in keys[:-1]:
            if node.get(key) is None:
                raise MatrixEditError(f"{path}: {'.'.join(keys)}: no {key!r} to edit under")
            node = node[key]
        last = keys[-1]
        if value is None:
            if last in node:
                del node[last]
        else:
            scalar = _scalar(value) if isinstance(value, str) else value
            if last not in node and last == "tag" and "commit" in node:
                node.insert(list(node).index("commit"), last, scalar)  # where a pin's tag always stands
            else:
                node[last] = scalar
    out = io.StringIO()
    rt.dump(data, out)
    new = out.getvalue()
    names = {keys[-1] for keys, _ in edits}
    changed = [line for line in difflib.ndiff(text.splitlines(), new.splitlines()) if line[:1] in "+-"]
    stray = [line for line in changed if line[2:].lstrip().split(":", 1)[0] not in names]
    if stray:
        raise MatrixEditError(f"{path}: the edit would also change other lines "
                              f"({'; '.join(s.strip() for s in stray[:3])}); edit the matrix by hand")
    return new


def validated(path: Path, text: str) -> LoadedMatrix:
    """The rewritten matrix `text`, loaded (and so checked) before anything is written: from a file beside the
    original `path`, so its relative URLs hold. Raises MatrixError as loading `path` would."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.stem}.", suffix=".yaml") as tmp:
        tmp.write(text)
        tmp.flush()
        checked = load_matrix(Path(tmp.name))
    return LoadedMatrix(path, checked.model)
