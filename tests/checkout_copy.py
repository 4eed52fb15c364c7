"""A copy of this checkout for tests that edit the project (its matrix, templates, components) and run its tasks."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_project(tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(ROOT, dest, ignore=_not_copied)
    return dest


def _not_copied(folder: str, names: list[str]) -> set[str]:
    """What a copy leaves out: caches, and build/ at the top only (epbuild/build/ is code)."""
    skipped = {".git", "__pycache__", ".hypothesis", ".pytest_cache"} & set(names)
    return skipped | ({"build"} if Path(folder).resolve() == ROOT and "build" in names else set())
