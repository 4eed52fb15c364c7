"""`pip install .` into a fresh virtual environment gives an `epbuild` command that works from any folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import OFFLINE, ROOT, cells_json


def test_pip_install_gives_a_working_epbuild(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    epbuild = str(venv / "bin" / "epbuild")

    listed = subprocess.run([epbuild, "--list"], cwd=elsewhere, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    for task in ("build", "matrix", "render", "publish", "pull", "bump"):
        assert f"  {task} " in listed.stdout

    shown = subprocess.run([epbuild, "matrix", "--json", "--matrix", str(ROOT / OFFLINE)], cwd=elsewhere,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    installed = {c["cell"]: c["content_key"] for c in json.loads(shown.stdout)["cells"]}
    # The same matrix gives the same keys from the installed command in another folder as from the checkout.
    assert installed == {name: c["content_key"] for name, c in cells_json().items()}

    help_text = subprocess.run([epbuild, "build", "-h"], cwd=elsewhere, capture_output=True, text=True)
    assert help_text.returncode == 0 and "--dry-run" in help_text.stdout
