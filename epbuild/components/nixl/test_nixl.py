"""NIXL: the wheel installed under its variant's distribution, importable as `nixl`, carrying UCX's transport modules
(its plugins) with the verbs transports among them, each loading in the image, and linking the cell's UCX."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers import distribution, shared_libraries

pytestmark = pytest.mark.component("nixl")


@pytest.fixture(scope="module")
def dist(host: Any, expected: dict[str, Any]) -> dict[str, Any]:
    name = expected["components"]["nixl"]["wheel_name"]
    found = distribution(host, name)
    assert found is not None, f"{name} (components.nixl.wheel_name) is not installed"
    return found


def test_carries_the_variant_package(dist: dict[str, Any], expected: dict[str, Any]) -> None:
    # meson's -Dwheel_variant=<v> names the native package nixl_<v> (NIXL meson.build: 'nixl_' + wheel_variant).
    package = f"nixl_{expected['components']['nixl']['wheel_variant']}"
    assert any(f"/{package}/" in f for f in dist["files"]), f"the wheel has no {package} package"


def test_imports_and_loads_its_ucx_plugins(python: Callable[[str], Any], dist: dict[str, Any]) -> None:
    plugin_dir, transports = python(
        "import json, nixl; print(json.dumps([str(nixl.ucx_plugin_dir()), nixl.ucx_transports()]))")
    assert any(f.startswith(plugin_dir + "/") for f in dist["files"]), (
        f"NIXL's UCX plugin folder {plugin_dir} is not part of its wheel")
    loaded = {tl for _, tl in transports}
    for tl in ("rc_verbs", "ud_verbs"):
        assert tl in loaded, f"NIXL's UCX plugins give no {tl}: {transports}"


def test_links_the_cells_ucx(host: Any, dist: dict[str, Any], expected: dict[str, Any]) -> None:
    ucx_lib = expected["components"]["ucx"]["copies"][0] + "/lib"
    natives = [lib for lib in shared_libraries(dist) if "/_bindings" in lib]
    assert natives, f"NIXL has no native bindings: {shared_libraries(dist)}"
    for lib in natives:
        ldd = host.check_output("ldd %s", lib)
        linked = re.search(r"^\s*libucp\.so\.0 => (\S+)", ldd, re.M)
        assert linked and linked.group(1).startswith(ucx_lib + "/"), f"{lib} does not link UCX from {ucx_lib}: {ldd}"
