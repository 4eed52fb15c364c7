"""pyproject.toml declares everything epbuild imports at run time: every third-party module imported by epbuild/
and by the in-image checks it ships (epbuild/checks/image, epbuild/checks/gpu) comes from a distribution that
[project].dependencies names, and nothing is declared that epbuild neither imports nor runs. Which distribution
provides a module is the installed environment's answer (importlib.metadata), not a list kept here."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CHECKS = [ROOT / "epbuild" / "checks" / "image", ROOT / "epbuild" / "checks" / "gpu"]
# Declared, but run rather than imported.
RUN_NOT_IMPORTED = {"pip": "epbuild/inputs/wheelhouse.py runs `python -m pip --python ENV install --dry-run`"}


def sources() -> list[Path]:
    """epbuild's modules and the in-image checks it ships; not the stand-ins under components/*/fixture*, which
    model upstream code that runs inside the images, never in epbuild."""
    own = [p for p in (ROOT / "epbuild").rglob("*.py")
           if not any(part.startswith("fixture") for part in p.relative_to(ROOT / "epbuild").parts)]
    assert all(folder.is_dir() for folder in SHIPPED_CHECKS), SHIPPED_CHECKS
    return sorted(own)  # the shipped checks are under epbuild/ too


def imported_modules(files: Iterable[Path], local: set[str]) -> dict[str, set[str]]:
    """Top-level module -> the files importing it, for every module neither stdlib, epbuild nor in `local`."""
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "epbuild" and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT) if path.is_relative_to(ROOT)
                                                         else path))
    return found


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}


@cache
def providers() -> Mapping[str, list[str]]:
    """Top-level module -> the installed distributions providing it (slow to compute: once per run)."""
    return packages_distributions()


def undeclared(modules: dict[str, set[str]], names: set[str]) -> list[str]:
    problems = []
    for module, files in sorted(modules.items()):
        dists = {canonicalize_name(d) for d in providers().get(module, [])}
        if not dists & names:
            where = ", ".join(sorted(files))
            problems.append(f"{module} (imported by {where}) comes from {sorted(dists) or 'no installed distribution'}"
                            f", which pyproject.toml does not declare")
    return problems


def local_modules() -> set[str]:
    """The in-image checks import their helpers by plain name (the checks' folder is on their path)."""
    return {p.stem for folder in SHIPPED_CHECKS for p in folder.glob("*.py")}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    modules = imported_modules(sources(), local_modules())
    assert {"debian", "ruamel", "cryptography", "testinfra"} <= set(modules)  # the walk sees the whole package
    assert undeclared(modules, declared()) == []


def test_every_declared_dependency_is_imported_or_run() -> None:
    used = {canonicalize_name(d) for module in imported_modules(sources(), local_modules())
            for d in providers().get(module, [])}
    assert declared() - used == set(RUN_NOT_IMPORTED)


def test_an_undeclared_import_is_named_with_its_file(tmp_path: Path) -> None:
    module = tmp_path / "uses_hypothesis.py"
    module.write_text("import os\nfrom hypothesis import given\nimport epbuild.util\n")
    problems = undeclared(imported_modules([module], set()), declared())
    assert problems == [f"hypothesis (imported by {module}) comes from ['hypothesis'], which pyproject.toml does "
                        "not declare"]
