"""What a cell's image must carry, derived from the matrix and the render: the input of the image checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild import manifest
from epbuild.commands import Runner
from epbuild.render import RenderedCell
from epbuild.sources import SourceCache, resolve_url
from epbuild.stages import built_pins

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (tests/image) read the path of the expectation file from this variable."""


def rdma_core_version(tag: str | None) -> str | None:
    """rdma-core's libraries end in the release number of the tag: v62.0 installs libibverbs.so.1.X.62.0."""
    if tag and tag.startswith("v") and tag[1:].replace(".", "").isdigit():
        return tag[1:]
    return None


def pin_sources(rc: RenderedCell, root: Path, matrix_dir: Path) -> dict[str, dict[str, str]]:
    """Where each built component's history is on this host (the bare mirror the build fetched into) and the
    commit pinned, so the checks can read the source at the pin themselves (not what epbuild wrote about it)."""
    cache = SourceCache(root, Runner())
    out = {}
    for name, pin in built_pins(rc.plan).items():
        url = resolve_url(pin.repo, matrix_dir)
        out[name] = {"git_dir": str(cache.mirror_path(url)), "commit": pin.commit}
    return out


def expectation(rc: RenderedCell, image: str, root: Path, matrix_dir: Path) -> dict[str, Any]:
    plan = rc.plan
    components = list(built_pins(plan))
    return {
        "sources": pin_sources(rc, root, matrix_dir),
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
        "manifest": manifest.manifest(plan, rc.key),
        "labels": manifest.labels(plan, rc.key),
        "runtime_env": dict(plan.matrix.runtime_env),
    }


def write(expect: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return path
