"""AITER: installed (upstream's distribution is amd-aiter), importable, prebuilt kernels for exactly the cell's archs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from python_component import check_device_code, check_import, installed

pytestmark = pytest.mark.component("aiter")


@pytest.fixture(scope="module")
def dist(host: Any) -> dict[str, Any]:
    return installed(host, "amd-aiter", "aiter")


def test_imports(host: Any, dist: dict[str, Any], has_torch: bool) -> None:
    check_import(host, has_torch, "aiter")


def test_device_code_for_exactly_the_cell_archs(dist: dict[str, Any], copy_out: Callable[[str], Path],
                                                 expected: dict[str, Any]) -> None:
    check_device_code(dist, copy_out, expected["archs"], "AITER")
