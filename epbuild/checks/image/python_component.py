"""The checks every wheel-built component shares: installed, imports, device code for exactly the cell's archs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import assert_exact_archs, device_archs, distribution, shared_libraries


def installed(host: Any, *dist_names: str) -> dict[str, Any]:
    found = distribution(host, *dist_names)
    assert found is not None, f"none of the distributions {', '.join(dist_names)} is installed"
    return found


def check_import(host: Any, has_torch: bool, module: str) -> None:
    result = host.run("python3 -c %s", ("import torch\n" if has_torch else "") + f"import {module}")
    assert result.rc == 0, f"import {module} failed: {result.stderr}"


def check_device_code(dist: dict[str, Any], copy_out: Callable[[str], Path], archs: list[str], what: str) -> None:
    libs = shared_libraries(dist)
    assert libs, f"{what} ships no shared library"
    assert_exact_archs(device_archs(copy_out, libs), archs, what)
