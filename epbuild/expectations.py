"""What a cell's image must carry, for the image checks: the cell's record (the same one its manifest holds and
`invoke matrix` lists), the labels, and the image under test. The record's exact inputs (base image digest,
full commits) are resolved apart from the build, so a build that recorded other inputs fails the checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild import manifest
from epbuild.content_key import content_key
from epbuild.render import RenderedCell
from epbuild.resolve import Resolved

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (tests/image) read the path of the expectation file from this variable."""


def expectation(rc: RenderedCell, image: str, resolved: Resolved) -> dict[str, Any]:
    """`resolved`: this checkout's exact inputs (epbuild.content_key.checkout_inputs)."""
    key = content_key(rc, resolved)
    return {"image": image, "record": manifest.record(rc.plan, rc.key, key, resolved),
            "labels": manifest.labels(rc.plan, rc.key, key, resolved)}


def write(expect: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
