"""Issue 14, items 1 and 11 together: `build --push` sends the reproducible image (SOURCE_DATE_EPOCH and
rewritten timestamps, through the cell's OCI layout), so two cold pushes of a cell give the registry the same
manifest digest, and that digest is the image ID a local build of the same inputs gives."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from harness import OFFLINE, cells_json, invoke
from registry import Registry

pytestmark = pytest.mark.docker

CELL = "gfx950-cx7-sid"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("push-registry"))
    try:
        yield reg
    finally:
        reg.stop()


def cold_push(registry: Registry) -> str:
    """The digest the registry holds, after the push, under the cell's immutable tag (read from the registry's
    own bytes)."""
    result = invoke("build", "--matrix", OFFLINE, "--cell", CELL, "--no-cache", "--quiet", "--push",
                    f"{registry.address}/pushed", check=True)
    (cell,) = result.summary["cells"]
    image = cells_json(OFFLINE)[CELL]["image"].split(":")[0]
    body, _ = registry.manifest(f"pushed/{image}", f"{CELL}-{cell['content_key'][:12]}")
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_two_cold_pushes_give_the_registry_the_image_a_local_build_gives(registry: Registry) -> None:
    first = cold_push(registry)
    second = cold_push(registry)
    assert first == second
    local = invoke("build", "--matrix", OFFLINE, "--cell", CELL, "--quiet", check=True)
    (cell,) = local.summary["cells"]
    assert cell["image_id"] == first
