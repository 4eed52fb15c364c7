"""rocSHMEM: the static library, headers and tool under its prefix, with device code for exactly the cell's archs
and the GPU-direct-async backend for the cell's NIC, and the functional tests all_backends builds."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_exact_archs, device_archs

from epbuild.components.rocshmem import FUNCTIONAL_DRIVER, FUNCTIONAL_TESTER, FUNCTIONAL_TESTER_DIRS

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


def build_records(host: Any, path: str) -> set[str]:
    """The library's build record (revision, targets, backends) as compiled into `path`."""
    return set(re.findall(r"rocshmem \S+ targets=\S* backends=\S*", host.check_output("strings %s", path)))


def test_functional_tester_is_installed_and_built_with_the_images_library(host: Any,
                                                                        expected: dict[str, Any]) -> None:
    """The functional tests all_backends builds, where the pin installs them (the GPU tier runs them with the
    pin's driver): the tester is there, its dynamic libraries resolve, and it carries this image's librocshmem
    (a static library: the tester holds the same build record as lib/librocshmem.a)."""
    prefix_dir = prefix(expected)
    places = [f"{prefix_dir}/{folder}/{FUNCTIONAL_TESTER}" for folder in FUNCTIONAL_TESTER_DIRS]
    found = [path for path in places if host.file(path).is_file]
    assert found, f"no {FUNCTIONAL_TESTER} in the image ({' nor '.join(places)})"
    tester = found[0]
    assert host.file(tester).mode & 0o111, f"{tester} is not executable"
    assert host.file(f"{prefix_dir}/{FUNCTIONAL_DRIVER}").is_file, f"{prefix_dir}/{FUNCTIONAL_DRIVER} missing"
    ldd = host.run("ldd %s", tester)
    assert ldd.rc == 0 and "not found" not in ldd.stdout, f"ldd {tester}:\n{ldd.stdout}{ldd.stderr}"
    shared = re.findall(r"librocshmem\.so\S* => (\S+)", ldd.stdout)
    if shared:  # a build that makes the shared library: it must be the image's own
        assert all(path.startswith(f"{prefix_dir}/lib/") for path in shared), f"{tester} loads {shared}"
        return
    library = build_records(host, f"{prefix_dir}/lib/librocshmem.a")
    assert library, f"{prefix_dir}/lib/librocshmem.a records no build"
    carried = build_records(host, tester)
    assert carried == library, f"{tester} carries {sorted(carried)}, the image's librocshmem.a {sorted(library)}"
