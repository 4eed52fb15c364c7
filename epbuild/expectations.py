"""What a cell's image must carry, for the image checks: the cell's record (the same one its manifest holds and
`invoke matrix` lists), the labels, and the image under test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild import manifest
from epbuild.commands import Runner
from epbuild.render import RenderedCell
from epbuild.sources import SourceCache, resolve_url
from epbuild.stagegraph import built_pins

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (tests/image) read the path of the expectation file from this variable."""


def pin_sources(rc: RenderedCell, root: Path, matrix_dir: Path) -> dict[str, dict[str, str]]:
    """Where each built component's history is on this host (the bare mirror the build fetched into) and the
    commit pinned, so the checks can read the source at the pin themselves (not what epbuild wrote about it)."""
    cache = SourceCache(root, Runner())
    out = {}
    for name, pin in built_pins(rc.plan).items():
        out[name] = {"git_dir": str(cache.mirror_path(resolve_url(pin.repo, matrix_dir))), "commit": pin.commit}
    return out


def expectation(rc: RenderedCell, image: str, root: Path, matrix_dir: Path) -> dict[str, Any]:
    return {"image": image, "record": manifest.record(rc.plan, rc.key), "labels": manifest.labels(rc.plan, rc.key),
            "sources": pin_sources(rc, root, matrix_dir)}


def write(expect: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
