"""`pip install .` into a fresh virtual environment gives an `epbuild` command that works from any folder."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from harness import OFFLINE, ROOT, cells_json


def test_pip_install_gives_a_working_epbuild(tmp_path: Path) -> None:
    # Offline (this test runs in the suite's no-network selection): the dependencies come from the environment
    # running the tests (ci/setup.sh's venv, from the lock), and `pip check` proves every requirement the project
    # declares is met by them; only epbuild itself is installed, built by this interpreter's setuptools.
    # `--system-site-packages` would give the base interpreter's packages instead (a venv's venv sees its base's),
    # so the new venv gets this one's site-packages by a .pth line: its folders only, not the .pth files in them
    # (the checkout's own editable epbuild stays out).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "test-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))))
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                          "--no-build-isolation", "--no-deps", str(ROOT)], capture_output=True, text=True,
                         timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    where = subprocess.run([python, "-c", "import epbuild; print(epbuild.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert where.returncode == 0 and where.stdout.startswith(str(venv)), where.stdout + where.stderr
    requirements = subprocess.run([python, "-m", "pip", "check", "--disable-pip-version-check"], capture_output=True,
                                  text=True)
    assert "epbuild" not in requirements.stdout, requirements.stdout  # the project's declared requirements are met
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

    # A dry run of the whole offline example by the installed command, run where a user would (the project folder:
    # an installed epbuild's project root is the current folder, and its renders name the matrix relative to it):
    # every cell's bake and load is planned from the installed package, and nothing in the checkout changes.
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    dry = subprocess.run([epbuild, "build", "--dry-run", "--all", "--matrix", OFFLINE], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Traceback" not in dry.stdout + dry.stderr
    assert "docker buildx bake" in dry.stdout
    for name in installed:
        assert f"docker load --quiet --input 'build/logs/<run>/{name}.oci.tar'" in dry.stdout, name
    assert subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout == before
