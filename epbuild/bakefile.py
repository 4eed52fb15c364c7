"""The buildx bake file: one target per cell, each fed its sources as named contexts `src-<component>`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from epbuild.render import RenderedCell

BAKE_FILE = "docker-bake.json"
SERVING_STAGE = "vllm-openai"


def serving_target(cell: str) -> str:
    """The bake target (and local tag suffix) of a cell's serving image."""
    return f"{cell}-{SERVING_STAGE}"
SOURCES_DIR = "build/sources"
"""Where `invoke sources` exports each component's tree, relative to the folder builds run from."""


def source_dir(component: str, commit: str) -> str:
    return f"{SOURCES_DIR}/{component}-{commit}"


def bake_json(cells: list[RenderedCell], *, context_root: str) -> str:
    targets = {}
    from epbuild.stages import stages_for

    for rc in cells:
        contexts = {
            f"src-{stage.source}": source_dir(stage.source, rc.plan.pins[stage.source].commit)
            for stage in stages_for(rc.plan)
            if stage.source is not None
        }
        targets[rc.cell.name] = {
            "context": f"{context_root}/{rc.cell.name}",
            "dockerfile": "Dockerfile",
            "contexts": contexts,
            "target": "final",
            "tags": [rc.plan.local_tag],
        }
    for rc in cells:
        targets[serving_target(rc.cell.name)] = {**targets[rc.cell.name], "target": SERVING_STAGE,
                                                 "tags": [serving_target(rc.plan.local_tag)]}
    doc = {"group": {"default": {"targets": [rc.cell.name for rc in cells]}}, "target": targets}
    return json.dumps(doc, indent=2) + "\n"
