"""MoRI: installed with its HIP library for exactly the cell's archs, and the dispatch/combine kernel types vLLM's
mori backends select (IntraNode within a node, InterNodeV1 / InterNodeV1LL across nodes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from python_component import check_device_code, check_import, installed

pytestmark = pytest.mark.component("mori")


@pytest.fixture(scope="module")
def dist(host: Any) -> dict[str, Any]:
    return installed(host, "mori")


def test_imports(host: Any, dist: dict[str, Any], has_torch: bool) -> None:
    check_import(host, has_torch, "mori")


def test_kernel_types_vllm_selects(python: Callable[[str], Any], has_torch: bool) -> None:
    names = python(("import torch\n" if has_torch else "") +
                   "import json, mori.ops as o; print(json.dumps([m for m in dir(o.EpDispatchCombineKernelType)]))")
    for kind in ("IntraNode", "InterNodeV1", "InterNodeV1LL"):
        assert kind in names, f"mori.ops.EpDispatchCombineKernelType has no {kind}"


def test_device_code_for_exactly_the_cell_archs(dist: dict[str, Any], copy_out: Callable[[str], Path],
                                                 expected: dict[str, Any]) -> None:
    check_device_code(dist, copy_out, expected["archs"], "MoRI")
