"""mypy finds no type error in epbuild/, with the configuration in pyproject.toml's [tool.mypy] (which files, how
strict, and the one library left unchecked for want of stubs). ci/requirements.txt installs mypy: without it the
check fails rather than passing unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_finds_nothing() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
