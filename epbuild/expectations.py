"""What a cell's image must carry, derived from the matrix and the render: the input of the image checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild import manifest
from epbuild.content_key import content_key
from epbuild.resolve import Resolved
from epbuild.render import RenderedCell
from epbuild.stages import built_pins

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (tests/image) read the path of the expectation file from this variable."""


def rdma_core_version(tag: str | None) -> str | None:
    """rdma-core's libraries end in the release number of the tag: v62.0 installs libibverbs.so.1.X.62.0."""
    if tag and tag.startswith("v") and tag[1:].replace(".", "").isdigit():
        return tag[1:]
    return None


def expectation(rc: RenderedCell, image: str, resolved: Resolved) -> dict[str, Any]:
    """`resolved`: this checkout's exact inputs (epbuild.content_key.checkout_inputs), resolved apart from the
    build, so a build that recorded other inputs fails the checks."""
    plan = rc.plan
    key = content_key(rc, resolved)
    components = list(built_pins(plan))
    return {
        "image": image,
        "cell": rc.cell.name,
        "archs": list(rc.cell.archs),
        "nic": rc.cell.nic,
        "provider": plan.nic.provider,
        "rdma_core": plan.nic.rdma_core,
        "rdma_core_version": rdma_core_version(plan.matrix.components.rdma_core.tag),
        "rocshmem_prefix": plan.matrix.components.rocshmem.install_prefix,
        "components": components,
        "base_image": plan.matrix.base.image,
        "manifest": manifest.manifest(plan, rc.key, key, resolved),
        "labels": manifest.labels(plan, rc.key, key, resolved),
        "runtime_env": dict(plan.matrix.runtime_env),
    }


def write(expect: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return path
