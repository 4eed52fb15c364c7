"""MoRI: installed with its HIP library for exactly the cell's archs, the dispatch/combine kernel types vLLM's
mori backends select (IntraNode within a node, InterNodeV1 / InterNodeV1LL across nodes), and the NIC vendor
library it links exactly where its pin compiles one in (read from its libraries' NEEDED entries)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import distribution, shared_libraries
from python_component import check_device_code, installed
from vendor_files import vendor_origin

pytestmark = pytest.mark.component("mori")


@pytest.fixture(scope="module")
def dist(host: Any) -> dict[str, Any]:
    return installed(host, "mori")


def test_kernel_types_vllm_selects(python: Callable[[str], Any], has_torch: bool, dist: dict[str, Any]) -> None:
    # Importing mori.ops imports mori: this is also MoRI's import check (a separate one could never fail alone).
    names = python(("import torch\n" if has_torch else "") +
                   "import json, mori.ops as o; print(json.dumps([m for m in dir(o.EpDispatchCombineKernelType)]))")
    for kind in ("IntraNode", "InterNodeV1", "InterNodeV1LL"):
        assert kind in names, f"mori.ops.EpDispatchCombineKernelType has no {kind}"


def test_device_code_for_exactly_the_cell_archs(dist: dict[str, Any], copy_out: Callable[[str], Path],
                                                 expected: dict[str, Any]) -> None:
    check_device_code(dist, copy_out, expected["archs"], "MoRI")


def test_links_the_vendor_library_exactly_where_its_pin_compiles_it_in(host: Any,
                                                                           expected: dict[str, Any]) -> None:
    dist = distribution(host, "mori")
    assert dist is not None, "mori is not installed"
    wanted = expected["mori_vendor_library"]
    vendor_libs = ("libbnxt_re", "libionic")
    linked: dict[str, list[str]] = {}
    for lib in shared_libraries(dist):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", host.check_output("readelf -d %s", lib))
        linked[lib] = [n for n in needed if n.startswith(vendor_libs)]
    found = sorted({n for names in linked.values() for n in names})
    if wanted is None:
        assert not found, f"MoRI links {found}, but its pin builds no vendor backend for this NIC"
        return
    assert any(n.startswith(wanted) for n in found), f"MoRI links no {wanted} (its vendor backend is off): {linked}"
    for lib, names in linked.items():
        for name in names:
            resolved = re.search(rf"^\s*{re.escape(name)} => (\S+)", host.check_output("ldd %s", lib), re.M)
            assert resolved, f"{lib}: {name} does not resolve"
            vendor_origin(host, resolved.group(1), expected["vendor"]["packages"])


def test_links_the_mpi_it_requires(host: Any) -> None:
    # MoRI 2d02c6a9 links MPI::MPI_CXX (src/application and src/shmem CMakeLists.txt: find_package(MPI REQUIRED)),
    # so its libraries need libmpi and the image must resolve it (the base's openmpi, as in rocm/vllm-dev:base).
    dist = distribution(host, "mori")
    assert dist is not None, "mori is not installed"
    resolved: dict[str, str] = {}
    for lib in shared_libraries(dist):
        resolved.update(re.findall(r"^\s*(libmpi\S*\.so\S*) => (\S+)", host.check_output("ldd %s", lib), re.M))
    assert resolved, f"no MoRI library links an MPI: {shared_libraries(dist)}"
    assert "not" not in resolved.values(), f"MoRI's MPI does not resolve: {resolved}"
