"""No import cycle in epbuild/: every import statement of every module, those inside functions and under
TYPE_CHECKING included, read from the source with ast (not by importing, which would hide a function-level
import until it runs)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "epbuild"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def imports(path: Path, known: set[str], root: Path = ROOT) -> set[str]:
    """The package's modules one file imports, wherever the import statement sits."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from epbuild.render import dockerfiles` imports the module epbuild.render.dockerfiles; `from x import name`, module x.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imports(path, set(known), package.parent) for name, path in known.items()}


def test_the_walker_finds_a_cycle_closed_inside_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import c\n")
    (pkg / "c.py").write_text("import os\n\ndef late():\n    return 1\n")
    assert cycles(import_graph(pkg)) == []
    (pkg / "c.py").write_text("import os\n\ndef late():\n    from pkg import a\n    return a\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_import_cycle_in_epbuild() -> None:
    graph = import_graph(PACKAGE)
    assert sum(len(v) for v in graph.values()) > 50, "the walker found implausibly few imports"
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


LAYERS = ("util", "model", "registry", "inputs", "render", "build", "release", "ci", "checks", "pinning", "cli")
"""epbuild's subpackages from the bottom up (docs/architecture.md): each may import only those before it."""


def test_each_subpackage_imports_only_the_layers_below_it() -> None:
    graph = import_graph(PACKAGE)
    rank = {name: i for i, name in enumerate(LAYERS)}
    present = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - {"components", "offline"}
    assert present == set(LAYERS), f"subpackages not placed in a layer: {sorted(present ^ set(LAYERS))}"
    upward = []
    for module, targets in graph.items():
        layer = module.split(".")[1] if module.count(".") >= 1 else None
        if layer not in rank:
            continue
        for target in targets:
            target_layer = target.split(".")[1] if target.count(".") >= 1 else None
            if target_layer in rank and rank[target_layer] > rank[layer]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports up the layers:\n  " + "\n  ".join(sorted(upward))


def test_the_top_level_holds_only_the_subpackages() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py"], f"modules outside a subpackage: {top}"
