"""vLLM: the ROCm wheel, importable, its extensions built for exactly the cell's archs."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

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
                wanted[path.relative_to(member).as_posix()] = tar.extractfile(info).read()  # type: ignore[union-attr]
    assert wanted, f"the archive holds no *.py under {member}"
    marker = "/vllm/third_party/triton_kernels/"
    installed_files = {f.split(marker, 1)[1]: f for f in dist["files"] if marker in f and f.endswith(".py")}
    assert sorted(installed_files) == sorted(wanted), "vllm/third_party/triton_kernels differs from the archive"
    for rel, content in wanted.items():
        assert copy_out(installed_files[rel]).read_bytes() == content, f"triton_kernels/{rel} is not the pinned file"
