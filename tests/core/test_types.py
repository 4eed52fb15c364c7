"""mypy finds no type error in epbuild/, with the configuration in pyproject.toml's [tool.mypy] (which files, how
strict, and the libraries left unchecked for want of stubs). ci/requirements.txt installs mypy: without it the
check fails rather than passing unnoticed.

The in-image checks (epbuild/checks/image, the GPU tier in epbuild/checks/gpu) run as pytest's top-level modules,
each folder on its own path, so each folder is checked as such: as modules of the package, their imports of each
other (`from helpers import ...`) would not resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def mypy(*args: str, path: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": path} if path else None
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def test_mypy_finds_nothing_in_the_package() -> None:
    proc = mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("folder", ["epbuild/checks/image", "epbuild/checks/gpu"])
def test_mypy_finds_nothing_in_the_checks(folder: str) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).glob("*.py"))
    assert files, f"no checks found in {folder}"
    proc = mypy("--explicit-package-bases", *files, path=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
