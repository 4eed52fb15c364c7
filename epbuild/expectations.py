"""What a cell's image must carry, for the image checks: the cell's record (the same one its manifest holds and
`invoke matrix` lists), the labels, and the image under test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild import manifest
from epbuild.render import RenderedCell

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (tests/image) read the path of the expectation file from this variable."""


def expectation(rc: RenderedCell, image: str) -> dict[str, Any]:
    return {"image": image, "record": manifest.record(rc.plan, rc.key), "labels": manifest.labels(rc.plan, rc.key)}


def write(expect: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
