"""vLLM: the ROCm wheel, importable, its extensions built for exactly the cell's archs, its Rust frontend built
from the pin."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import tomllib
from pins import setuptools_scm_version
from python_component import check_device_code, check_import, installed

pytestmark = pytest.mark.component("vllm")


@pytest.fixture(scope="module")
def dist(host: Any) -> dict[str, Any]:
    return installed(host, "vllm")


def test_imports(host: Any, dist: dict[str, Any], has_torch: bool) -> None:
    check_import(host, has_torch, "vllm")


def test_device_code_for_exactly_the_cell_archs(dist: dict[str, Any], copy_out: Callable[[str], Path],
                                                 expected: dict[str, Any]) -> None:
    check_device_code(dist, copy_out, expected["archs"], "vLLM")


def test_smoke_tools_vllm_ci_expects(host: Any) -> None:
    # vLLM's own image smoke test: python3, and rocminfo or amd-smi, present.
    assert host.exists("python3")
    assert host.exists("rocminfo") or host.exists("amd-smi"), "neither rocminfo nor amd-smi is in the image"


def test_triton_kernels_are_the_pinned_archive(dist: dict[str, Any], copy_out: Callable[[str], Path],
                                               expected: dict[str, Any]) -> None:
    # TRITON_KERNELS_SRC_DIR's *.py files land in vllm/third_party/triton_kernels (cmake/external_projects/
    # triton_kernels.cmake); each must be the pinned archive's own file, read here from the download itself.
    archive = expected["archives"]["triton-kernels"]
    data = Path(archive["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == archive["sha256"], f"{archive['path']} is not the pinned archive"
    member = PurePosixPath(archive["member"])
    wanted = {}
    with tarfile.open(archive["path"]) as tar:
        for info in tar.getmembers():
            path = PurePosixPath(info.name)
            if info.isfile() and member in path.parents and path.suffix == ".py":
                extracted = tar.extractfile(info)
                assert extracted is not None, f"{info.name}: a regular file, yet tarfile cannot read it"
                wanted[path.relative_to(member).as_posix()] = extracted.read()
    assert wanted, f"the archive holds no *.py under {member}"
    marker = "/vllm/third_party/triton_kernels/"
    installed_files = {f.split(marker, 1)[1]: f for f in dist["files"] if marker in f and f.endswith(".py")}
    assert sorted(installed_files) == sorted(wanted), "vllm/third_party/triton_kernels differs from the archive"
    for rel, content in wanted.items():
        assert copy_out(installed_files[rel]).read_bytes() == content, f"triton_kernels/{rel} is not the pinned file"


def _pin_file(source: dict[str, str], path: str) -> str:
    """A file of the source at the pin, read from the history the build fetched (not from what epbuild wrote)."""
    return subprocess.run(["git", "--git-dir", source["git_dir"], "show", f"{source['commit']}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def _crate_version(source: dict[str, str], manifest: str) -> str:
    package = tomllib.loads(_pin_file(source, manifest))["package"]
    version = package["version"]
    if isinstance(version, dict) and version.get("workspace"):
        return tomllib.loads(_pin_file(source, "rust/Cargo.toml"))["workspace"]["package"]["version"]
    return version


def _shipped(dist: dict[str, Any], suffix: str) -> list[str]:
    return [f for f in dist["files"] if f.endswith(suffix)]


@pytest.fixture(scope="module")
def rust_frontend(expected: dict[str, Any]) -> bool:
    return bool(expected["components"]["vllm"].get("rust_frontend"))


def test_rust_frontend_binary_is_built_from_the_pin(host: Any, dist: dict[str, Any], expected: dict[str, Any],
                                                    rust_frontend: bool) -> None:
    # tools/build_rust.py: RustBin vllm-rs from rust/src/cmd/Cargo.toml, shipped as vllm/vllm-rs.
    if not rust_frontend:
        pytest.skip("components.vllm.rust_frontend is false in this matrix")
    binaries = _shipped(dist, "/vllm/vllm-rs")
    assert len(binaries) == 1, f"the vllm wheel ships {binaries or 'no'} vllm/vllm-rs"
    result = host.run("%s --version", binaries[0])
    assert result.rc == 0, f"vllm-rs --version failed: {result.stderr}"
    version = _crate_version(expected["sources"]["vllm"], "rust/src/cmd/Cargo.toml")
    assert result.stdout.split()[:2] == ["vllm-rs", version], (
        f"vllm-rs says {result.stdout.strip()!r}; rust/src/cmd at the pin is version {version}")


def test_rust_tool_parser_imports_for_the_stable_abi(host: Any, dist: dict[str, Any],
                                                     rust_frontend: bool) -> None:
    # tools/build_rust.py: vllm._rust_tool_parser, PyO3 with py_limited_api (pyo3/abi3-py38): one *.abi3.so.
    if not rust_frontend:
        pytest.skip("components.vllm.rust_frontend is false in this matrix")
    modules = _shipped(dist, ".so")
    parsers = [m for m in modules if m.rsplit("/", 1)[-1].startswith("_rust_tool_parser.")]
    assert [p.rsplit("/", 1)[-1] for p in parsers] == ["_rust_tool_parser.abi3.so"], (
        f"the vllm wheel ships {parsers or 'no'} vllm/_rust_tool_parser.*.so; the build asks for one abi3 module")
    # Loaded by path, without importing the vllm package (the real one needs torch and a GPU to import fully).
    script = ("import importlib.util, sys\n"
              "spec = importlib.util.spec_from_file_location('vllm._rust_tool_parser', sys.argv[1])\n"
              "module = importlib.util.module_from_spec(spec)\n"
              "spec.loader.exec_module(module)\n"
              "print(module.__name__)\n")
    result = host.run("python3 -c %s %s", script, parsers[0])
    assert result.rc == 0 and result.stdout.strip() == "vllm._rust_tool_parser", (
        f"vllm._rust_tool_parser does not import: {result.stderr.strip()}")


def test_the_vllm_command_runs_and_prints_the_pin_s_version(host: Any, expected: dict[str, Any]) -> None:
    # The console script imports the serving stack before it parses anything (vllm/entrypoints/cli/main.py): it
    # runs only where vLLM's runtime requirements are installed. It prints vllm.__version__, which is what
    # setuptools-scm wrote to vllm/_version.py (get_version(write_to=...)): the pin's version without the ROCm
    # suffix setup.py adds to the distribution's own.
    result = host.run("vllm --version")
    assert result.rc == 0, f"vllm --version: {result.stderr.strip()[-1000:]}"
    wanted = setuptools_scm_version(expected["sources"]["vllm"])
    assert result.stdout.strip() == wanted, f"vllm --version prints {result.stdout.strip()!r}, the pin is {wanted}"


def test_the_server_starts_far_enough_to_print_its_help(host: Any) -> None:
    # What the serving target runs (ENTRYPOINT ["vllm", "serve"], Dockerfile.rocm@00305ee5 vllm-openai).
    result = host.run("vllm serve --help")
    assert result.rc == 0, f"vllm serve --help: {result.stderr.strip()[-1000:]}"
    assert result.stdout.startswith("usage: vllm serve"), result.stdout[:500]
