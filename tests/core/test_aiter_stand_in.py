"""The AITER stand-in prebuilds its kernels only where torch imports, as setup.py@6a0e7b26 does (lines 145-155):
without torch PREBUILD_KERNELS only prints a message and the wheel would carry no kernels."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from epbuild.model.component import BUILTIN_DIR
from epbuild.util.resources import resource

FIXTURE = BUILTIN_DIR / "aiter" / "fixture"
CK = resource("examples/offline/fixtures/aiter-ck")
TORCH_STAND_IN = resource("examples/offline/base/torch-stand-in")
SKIPPED = "[aiter] PREBUILD_KERNELS set but torch not installed, skip precompilation in this environment"


def build_ext(tmp_path: Path, torch: bool) -> subprocess.CompletedProcess[str]:
    """`setup.py build_ext` with PREBUILD_KERNELS=1, torch made unimportable or the offline base's stand-in on
    the path (the prebuild itself then stops or not, depending on the host's hipcc: only its start is asserted)."""
    source = tmp_path / "aiter"
    shutil.copytree(FIXTURE, source)
    hide = "" if torch else "sys.modules['torch'] = None; "
    code = f"import runpy, sys; {hide}sys.argv = ['setup.py', 'build_ext']; runpy.run_path('setup.py', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PREBUILD_KERNELS": "1", "GPU_ARCHS": "gfx942",
                               "CK_DIR": str(CK), "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_AMD_AITER": "0.1.10.post3",
                               "PYTHONPATH": str(TORCH_STAND_IN) if torch else ""})


def test_without_torch_prebuilding_is_skipped_with_a_message(tmp_path: Path) -> None:
    done = build_ext(tmp_path, torch=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert SKIPPED in done.stdout and "prebuilding kernels" not in done.stdout


def test_with_torch_it_prebuilds(tmp_path: Path) -> None:
    done = build_ext(tmp_path, torch=True)
    assert "aiter: prebuilding kernels for ['gfx942']" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert SKIPPED not in done.stdout
