"""vLLM: the ROCm wheel, importable, its extensions built for exactly the cell's archs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
