"""The rocSHMEM stand-in's CMake configures as the real projects/rocshmem/CMakeLists.txt does (rocm-systems, read
at b88eb1c7 and 0a1aa2a9; hipcc and the ROCm version from cmake/setup_project.cmake@1c1c85ca): configured on the
host with a stand-in ROCm (a `hipcc` that runs the host's C++ compiler, empty hsa.h and verbs.h, .info/version),
only what the test hands it is found, so each case decides whether an MPI or libnuma exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from epbuild.model.component import BUILTIN_DIR

PROJECT = BUILTIN_DIR / "rocshmem" / "fixture" / "projects" / "rocshmem"
# The options scripts/build_configs/all_backends@0a1aa2a9 configures with (it then appends the caller's).
ALL_BACKENDS = ["-DBUILD_FUNCTIONAL_TESTS=ON", "-DBUILD_UNIT_TESTS=ON", "-DBUILD_EXAMPLES=ON", "-DUSE_GDA=ON",
                "-DGDA_MLX5=ON", "-DGDA_BNXT=ON", "-DGDA_IONIC=ON", "-DUSE_RO=ON", "-DUSE_IPC=ON"]
TEST_PROGRAMS = {"rocshmem_functional_tests", "rocshmem_unit_test", "rocshmem_hello"}


@pytest.fixture
def rocm(tmp_path: Path) -> Path:
    """A stand-in ROCm prefix: bin/hipcc (the host's C++ compiler), hsa/hsa.h and infiniband/verbs.h."""
    compiler = shutil.which("c++")
    assert compiler, "the host's C++ compiler (g++) is needed to configure the stand-in's CMake"
    prefix = tmp_path / "rocm"
    (prefix / "bin").mkdir(parents=True)
    hipcc = prefix / "bin" / "hipcc"
    hipcc.write_text(f'#!/bin/sh\nexec {compiler} "$@"\n')
    hipcc.chmod(0o755)
    for header in ("hsa/hsa.h", "infiniband/verbs.h"):
        (prefix / "include" / header).parent.mkdir(parents=True, exist_ok=True)
        (prefix / "include" / header).write_text("")
    (prefix / ".info").mkdir()
    (prefix / ".info" / "version").write_text("6.4.43484-9999\n")
    return prefix


def with_numa(tmp_path: Path) -> Path:
    prefix = tmp_path / "numa"
    (prefix / "include").mkdir(parents=True)
    (prefix / "lib").mkdir()
    (prefix / "include" / "numa.h").write_text("")
    (prefix / "lib" / "libnuma.so").write_text("")
    return prefix


def configure(rocm: Path, build: Path, *args: str, prefixes: tuple[Path, ...] = (),
              env: dict[str, str] | None = None, source: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    """`cmake` as all_backends runs it, searching only the stand-in prefixes (never the host's own MPI or numa)."""
    search = ";".join(str(p) for p in (rocm, *prefixes))
    make = shutil.which("make")
    assert make, "make is needed to configure the stand-in's CMake"
    return subprocess.run(
        ["cmake", "-S", str(source), "-B", str(build), f"-DROCM_PATH={rocm}", f"-DCMAKE_PREFIX_PATH={search}",
         "-DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF", "-DCMAKE_FIND_USE_SYSTEM_ENVIRONMENT_PATH=OFF",
         "-DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON", "--no-warn-unused-cli", f"-DCMAKE_MAKE_PROGRAM={make}", *ALL_BACKENDS, *args],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **(env or {})})


def targets(build: Path) -> set[str]:
    listed = subprocess.run(["cmake", "--build", str(build), "--target", "help"], capture_output=True, text=True,
                            check=True).stdout
    return {line.removeprefix("... ").split()[0] for line in listed.splitlines() if line.startswith("... ")}


@pytest.mark.parametrize("mpi", ["OFF", "AUTO"])
def test_without_an_mpi_only_the_functional_tests_are_built(rocm: Path, tmp_path: Path, mpi: str) -> None:
    # CMakeLists.txt@b88eb1c7 and @0a1aa2a9: no MPI found (or not looked for) sets BUILD_UNIT_TESTS and
    # BUILD_EXAMPLES OFF, whatever all_backends asked for; the functional tests stay.
    done = configure(rocm, tmp_path / "build", f"-DUSE_EXTERNAL_MPI={mpi}")
    assert done.returncode == 0, done.stderr
    assert targets(tmp_path / "build") & TEST_PROGRAMS == {"rocshmem_functional_tests"}


def test_an_external_mpi_asked_for_and_missing_aborts(rocm: Path, tmp_path: Path) -> None:
    done = configure(rocm, tmp_path / "build", "-DUSE_EXTERNAL_MPI=ON")
    assert done.returncode != 0
    assert "External MPI support requested but MPI support not found" in done.stderr


def test_use_external_mpi_defaults_to_auto(rocm: Path, tmp_path: Path) -> None:
    done = configure(rocm, tmp_path / "build")
    assert done.returncode == 0, done.stderr
    cache = (tmp_path / "build" / "CMakeCache.txt").read_text()
    assert "USE_EXTERNAL_MPI:STRING=AUTO" in cache


def test_an_in_source_build_is_refused(rocm: Path, tmp_path: Path) -> None:
    source = tmp_path / "rocshmem"
    shutil.copytree(PROJECT, source)
    done = configure(rocm, source, source=source)
    assert done.returncode != 0 and "In-source build" in done.stderr


def test_hipcc_is_the_compiler_whatever_cxx_says(rocm: Path, tmp_path: Path) -> None:
    # setup_project.cmake@1c1c85ca: hipcc from ROCm unless CMAKE_CXX_COMPILER is defined, so CXX is not read.
    done = configure(rocm, tmp_path / "build", prefixes=(with_numa(tmp_path),), env={"CXX": "/usr/bin/false"})
    assert done.returncode == 0, done.stderr
    # What CMake recorded as the compiler it identified and will run.
    [recorded] = (tmp_path / "build" / "CMakeFiles").glob("*/CMakeCXXCompiler.cmake")
    assert f'set(CMAKE_CXX_COMPILER "{rocm}/bin/hipcc")' in recorded.read_text()


@pytest.mark.parametrize("numa", [True, False])
def test_gda_is_quietly_off_without_libnuma(rocm: Path, tmp_path: Path, numa: bool) -> None:
    prefixes = (with_numa(tmp_path),) if numa else ()
    done = configure(rocm, tmp_path / "build", prefixes=prefixes)
    assert done.returncode == 0, done.stderr
    flags = (tmp_path / "build" / "CMakeFiles" / "rocshmem.dir" / "flags.make").read_text()
    assert ("-DGDA_MLX5" in flags) is numa, flags
    assert "-DUSE_IPC" in flags  # the other backends stay on either way


def test_a_rocm_without_its_version_file_is_refused_unless_the_version_is_given(rocm: Path, tmp_path: Path) -> None:
    # setup_project.cmake@1c1c85ca: find_file(... "version" PATH_SUFFIXES ".info" ... REQUIRED), unless
    # EXPLICIT_ROCM_VERSION is set (Debian's HIP has no such file: the offline base writes it).
    (rocm / ".info" / "version").unlink()
    done = configure(rocm, tmp_path / "build")
    assert done.returncode != 0 and "ROCSHMEM_ROCM_VERSION_FILE" in done.stderr, done.stderr[-2000:]
    done = configure(rocm, tmp_path / "explicit", "-DEXPLICIT_ROCM_VERSION=6.4.0")
    assert done.returncode == 0, done.stderr
    assert "ROCm version: 6.4.0" in done.stdout


def test_the_install_keeps_the_functional_tester_and_its_driver(rocm: Path, tmp_path: Path) -> None:
    # tests/functional_tests/CMakeLists.txt@f45ffe99: install(TARGETS rocshmem_functional_tests COMPONENT tests
    # RUNTIME DESTINATION ${CMAKE_INSTALL_DATADIR}/rocshmem) beside scripts/functional_tests/driver.sh copied as
    # rocshmem_functional_driver.sh; all_backends' `cmake --install .` names no component, so it installs them.
    done = configure(rocm, tmp_path / "build", "-DUSE_EXTERNAL_MPI=OFF", f"-DCMAKE_INSTALL_PREFIX={tmp_path / 'p'}")
    assert done.returncode == 0, done.stderr
    script = (tmp_path / "build" / "tests" / "functional_tests" / "cmake_install.cmake").read_text()
    assert 'CMAKE_INSTALL_COMPONENT STREQUAL "tests"' in script, script
    for installed in ("share/rocshmem\" TYPE EXECUTABLE FILES \"" , "rocshmem_functional_tests\"",
                      "rocshmem_functional_driver.sh\""):
        assert installed in script, (installed, script)
    copied = tmp_path / "build" / "tests" / "functional_tests" / "rocshmem_functional_driver.sh"
    assert copied.read_bytes() == (PROJECT / "scripts" / "functional_tests" / "driver.sh").read_bytes()
