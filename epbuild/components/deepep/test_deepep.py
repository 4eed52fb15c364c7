"""DeepEP: the deep_ep wheel with its deep_ep_cpp extension, carrying device code for the cell's archs
(the images vLLM shipped once had none: vLLM issue 37709)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_exact_archs, device_archs, distribution
from pins import git, installed_version

pytestmark = pytest.mark.component("deepep")


@pytest.fixture(scope="module")
def dist(host: Any) -> dict[str, Any]:
    found = distribution(host, "deep_ep", "deep-ep")
    assert found is not None, "the deep_ep distribution is not installed"
    return found


def extension(dist: dict[str, Any]) -> str:
    libs = [f for f in dist["files"] if Path(f).name.startswith("deep_ep_cpp") and f.endswith(".so")]
    assert len(libs) == 1, f"expected one deep_ep_cpp*.so in deep_ep, found {libs}"
    return libs[0]


def test_package_and_extension_installed(dist: dict[str, Any]) -> None:
    assert any("/deep_ep/" in f and f.endswith("__init__.py") for f in dist["files"])
    extension(dist)


def test_device_code_for_exactly_the_cell_archs(dist: dict[str, Any], copy_out: Callable[[str], Path],
                                                 expected: dict[str, Any]) -> None:
    assert_exact_archs(device_archs(copy_out, [extension(dist)]), expected["archs"], "deep_ep_cpp")


def test_imports(host: Any, has_torch: bool) -> None:
    # Real DeepEP imports torch first; a base with torch must therefore import cleanly with it loaded.
    result = host.run("python3 -c %s", ("import torch\n" if has_torch else "") + "import deep_ep, deep_ep_cpp")
    assert result.rc == 0, result.stderr


def test_version_is_what_a_checkout_of_the_pin_gives(host: Any, expected: dict[str, Any]) -> None:
    # setup.py@a9ea9774: version="1.0.0" + "+" + `git rev-parse --short HEAD`, the suffix dropped when git fails
    # (as in a tree exported without .git). Both parts are read here from the fetched history, by git itself.
    source = expected["sources"]["deepep"]
    setup_py = git(source, "show", f"{source['commit']}:setup.py").decode()
    base = re.search(r'version\s*=\s*"([^"]+)"\s*\+\s*revision', setup_py)
    assert base, f"setup.py at {source['commit'][:12]} no longer builds its version as \"<base>\" + revision"
    short = git(source, "rev-parse", "--short", source["commit"]).decode().strip()
    assert installed_version(host, "deep_ep") == f"{base.group(1)}+{short}"
