"""rocSHMEM: the static library, headers and tool under its prefix, with device code for exactly the cell's archs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import assert_exact_archs, device_archs


def test_install_layout(host: Any, expected: dict[str, Any]) -> None:
    prefix = expected["rocshmem_prefix"]
    for rel in ("lib/librocshmem.a", "include/rocshmem/rocshmem.hpp"):
        assert host.file(f"{prefix}/{rel}").is_file, f"{prefix}/{rel} missing"


def test_device_code_for_exactly_the_cell_archs(copy_out: Callable[[str], Path], expected: dict[str, Any]) -> None:
    lib = f"{expected['rocshmem_prefix']}/lib/librocshmem.a"
    assert_exact_archs(device_archs(copy_out, [lib]), expected["archs"], "rocSHMEM")
