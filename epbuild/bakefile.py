"""The buildx bake file: one target per cell, each fed its sources as named contexts `src-<component>`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from epbuild.render import RenderedCell

BAKE_FILE = "docker-bake.json"
SOURCES_DIR = "build/sources"
"""Where `invoke sources` exports each component's tree, relative to the folder builds run from."""


def source_dir(component: str, commit: str) -> str:
    return f"{SOURCES_DIR}/{component}-{commit}"


def cell_target(rc: RenderedCell, *, context_root: str) -> dict[str, Any]:
    """The bake target that builds `rc`'s final stage: its folder, Dockerfile and source contexts."""
    from epbuild.stages import stages_for

    contexts = {
        f"src-{stage.source}": source_dir(stage.source, rc.plan.pins[stage.source].commit)
        for stage in stages_for(rc.plan)
        if stage.source is not None
    }
    return {
        "context": f"{context_root}/{rc.cell.name}",
        "dockerfile": "Dockerfile",
        "contexts": contexts,
        "target": "final",
        "tags": [rc.plan.local_tag],
    }


def bake_json(cells: list[RenderedCell], *, context_root: str) -> str:
    targets = {rc.cell.name: cell_target(rc, context_root=context_root) for rc in cells}
    doc = {"group": {"default": {"targets": list(targets)}}, "target": targets}
    return json.dumps(doc, indent=2) + "\n"
