"""pyflakes finds nothing in the project's own Python: no unused import, no undefined name, no f-string without a
placeholder. The stand-ins' fixture sources are left out: they import what the real build files import (torch,
setuptools_rust) so a missing one fails as upstream does, whether or not the stand-in uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyflakes_finds_nothing() -> None:
    files = [str(p) for folder in ("epbuild", "tests", "bench") for p in sorted((ROOT / folder).rglob("*.py"))
             if "fixture" not in p.relative_to(ROOT).parts]
    files += [str(ROOT / "tasks.py")] if (ROOT / "tasks.py").exists() else []
    proc = subprocess.run([sys.executable, "-m", "pyflakes", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
