"""rocSHMEM: the static library, headers and tool under its prefix, with device code for exactly the cell's archs
and the GPU-direct-async backend for the cell's NIC."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_exact_archs, device_archs

pytestmark = pytest.mark.component("rocshmem")


def prefix(expected: dict[str, Any]) -> str:
    """The install prefix the cell's record says `final` copied."""
    copies: list[str] = expected["components"]["rocshmem"]["copies"]
    return copies[0]


def test_install_layout(host: Any, expected: dict[str, Any]) -> None:
    prefix_dir = prefix(expected)
    for rel in ("lib/librocshmem.a", "include/rocshmem/rocshmem.hpp"):
        assert host.file(f"{prefix_dir}/{rel}").is_file, f"{prefix_dir}/{rel} missing"


def test_device_code_for_exactly_the_cell_archs(copy_out: Callable[[str], Path], expected: dict[str, Any]) -> None:
    lib = f"{prefix(expected)}/lib/librocshmem.a"
    assert_exact_archs(device_archs(copy_out, [lib]), expected["archs"], "rocSHMEM")


def test_carries_the_gda_backend_for_the_nic(host: Any, expected: dict[str, Any]) -> None:
    lib = f"{prefix(expected)}/lib/librocshmem.a"
    recorded = re.findall(r"backends=([A-Z0-9_,]*)", host.check_output("strings %s", lib))
    assert recorded, f"{lib} records no backends"
    backends = set(recorded[0].strip(",").split(","))
    assert expected["rocshmem_backend"] in backends, f"{lib} has {sorted(backends)}, no {expected['rocshmem_backend']}"
