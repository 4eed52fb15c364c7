"""The MoRI stand-in cannot be built without what the real MoRI at 2d02c6a9 needs from its base image: torch
(setup.py imports it for the CMake prefix it passes, and for the archs when PYTORCH_ROCM_ARCH is unset) and an
MPI (src/application and src/shmem CMakeLists.txt: find_package(MPI REQUIRED)). The offline base provides both
(examples/offline/base: libopenmpi-dev and torch-stand-in/, whose CMake prefix this test also uses)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.model.component import BUILTIN_DIR
from epbuild.util.resources import resource

FIXTURE = BUILTIN_DIR / "mori" / "fixture"
TORCH_STAND_IN = resource("examples/offline/base/torch-stand-in")

# Run setup.py as the stage does, with torch made unimportable whatever the host has installed.
WITHOUT_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['setup.py', 'build_ext']; "
                 "runpy.run_path('setup.py', run_name='__main__')")


@pytest.mark.parametrize("arch_env", [{"MORI_GPU_ARCHS": "gfx942"}, {"PYTORCH_ROCM_ARCH": "gfx942"}])
def test_setup_py_stops_without_torch_before_cmake(tmp_path: Path, arch_env: dict[str, str]) -> None:
    source = tmp_path / "mori"
    shutil.copytree(FIXTURE, source)
    done = subprocess.run([sys.executable, "-c", WITHOUT_TORCH], cwd=source, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_MORI": "1.0.0",
                               **arch_env})
    assert done.returncode != 0
    assert "ModuleNotFoundError: import of torch halted" in done.stderr, done.stderr[-2000:]
    assert not (source / "build" / "CMakeCache.txt").exists()  # it stopped before configuring


def test_the_base_torch_stand_in_answers_what_setup_py_asks() -> None:
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.utils.cmake_prefix_path); "
                           "print(torch._C._cuda_getArchFlags())"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(TORCH_STAND_IN)}, check=True)
    prefix, archs = done.stdout.splitlines()
    assert (Path(prefix) / "Torch" / "TorchConfig.cmake").is_file()
    assert archs.split() == ["gfx942", "gfx950"]


def test_cmake_requires_an_mpi(tmp_path: Path) -> None:
    compiler = shutil.which("c++")
    assert compiler, "the host's C++ compiler (g++) is needed to configure the stand-in's CMake"
    rocm = tmp_path / "rocm"
    (rocm / "bin").mkdir(parents=True)
    (rocm / "bin" / "hipcc").write_text(f'#!/bin/sh\nexec {compiler} "$@"\n')
    (rocm / "bin" / "hipcc").chmod(0o755)
    torch_prefix = TORCH_STAND_IN / "torch" / "share" / "cmake"
    done = subprocess.run(
        ["cmake", "-S", str(FIXTURE), "-B", str(tmp_path / "build"), "-DGPU_TARGETS=gfx942",
         f"-DCMAKE_PREFIX_PATH={torch_prefix}", "-DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "ROCM_PATH": str(rocm)})
    assert done.returncode != 0
    assert "MPI" in done.stderr and "REQUIRED" in done.stderr, done.stderr[-2000:]
