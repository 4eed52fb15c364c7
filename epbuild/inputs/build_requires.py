"""What a Python component's build itself needs before any of its requirement files is read: pyproject.toml's
`[build-system] requires` and setup.py's `setup_requires`, read from the source at the pin.

Why: the stages run `python3 setup.py bdist_wheel` with no index. A `setup_requires` entry the image lacks makes
setuptools fetch it from an index in the RUN step, which fails there (AITER setup.py@6a0e7b26 has
`setup_requires=[..., "setuptools_scm"]`, its pyproject.toml requires `setuptools_scm[toml]>=6.2`, and its
requirements.txt lists neither). So these go into the component's wheelhouse, and a component with no wheelhouse
whose build needs something the base lacks is refused before bake.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

from epbuild.inputs.wheelhouse import Requirement

PYPROJECT_ORIGIN = "pyproject.toml [build-system] requires"
SETUP_ORIGIN = "setup.py setup_requires"


class UnreadableBuildRequires(ValueError):
    """setup.py computes setup_requires instead of listing it: what the build fetches cannot be known before."""


def _literal_strings(node: ast.expr, where: str) -> list[str]:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise UnreadableBuildRequires(f"{where}: setup_requires is computed, not a list of strings") from None
    return [value] if isinstance(value, str) else [str(item) for item in value]


def _named_list(tree: ast.Module, name: str, where: str) -> list[str]:
    """A module-level list `name = [...]` and every `name.append("...")`/`name.extend([...])` (AITER's setup.py
    builds setup_requires so, appending under a condition: both branches' entries are taken)."""
    found: list[str] = []
    assigned = False
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and \
                any(isinstance(t, ast.Name) and t.id == name for t in statement.targets):
            found += _literal_strings(statement.value, where)
            assigned = True
    if not assigned:
        raise UnreadableBuildRequires(f"{where}: setup_requires={name} is not a module-level list")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == name and node.args:
            if node.func.attr == "append":
                found += _literal_strings(node.args[0], where)
            elif node.func.attr == "extend":
                found += _literal_strings(node.args[0], where)
    return found


def _setup_requires(setup_py: Path) -> list[str]:
    tree = ast.parse(setup_py.read_text(), filename=str(setup_py))
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "setup"):
            continue
        for keyword in node.keywords:
            if keyword.arg != "setup_requires":
                continue
            where = f"setup.py line {keyword.value.lineno}"
            if isinstance(keyword.value, ast.Name):
                found += _named_list(tree, keyword.value.id, where)
            else:
                found += _literal_strings(keyword.value, where)
    return list(dict.fromkeys(found))


def read(source: Path) -> list[Requirement]:
    """The build-system requirements of the Python project at `source` (none where it has neither file)."""
    out: list[Requirement] = []
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        requires = tomllib.loads(pyproject.read_text()).get("build-system", {}).get("requires", [])
        out += [Requirement(str(line), PYPROJECT_ORIGIN) for line in requires]
    if (source / "setup.py").is_file():
        out += [Requirement(line, SETUP_ORIGIN) for line in _setup_requires(source / "setup.py")]
    return out
