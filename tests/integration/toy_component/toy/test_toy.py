"""The toy's in-image check: its wheel is installed, importable, and its library carries device code for exactly
the cell's archs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from python_component import check_device_code, check_import, installed

pytestmark = pytest.mark.component("toy")


def test_toy_imports_and_carries_the_cell_archs(host: Any, has_torch: bool, copy_out: Callable[[str], Path],
                                                expected: dict[str, Any]) -> None:
    dist = installed(host, "epbuild-toy")
    check_import(host, has_torch, "toy")
    check_device_code(dist, copy_out, expected["archs"], "toy")
