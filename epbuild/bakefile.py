"""The buildx bake file: one target per cell, each fed its sources as named contexts `src-<component>`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from epbuild.render import RenderedCell

BAKE_FILE = "docker-bake.json"
SOURCES_DIR = "build/sources"
"""Where `invoke sources` exports each component's tree, relative to the folder builds run from."""
SCM_DIR = "build/scm"
"""Where each setuptools-scm-versioned component's computed version is written (epbuild.scm_version)."""
WHEELHOUSE_DIR = "build/wheelhouse"
"""Where each component's build requirements are downloaded (epbuild.wheelhouse)."""


def source_dir(component: str, commit: str) -> str:
    return f"{SOURCES_DIR}/{component}-{commit}"


def bake_json(cells: list[RenderedCell], *, context_root: str) -> str:
    targets = {}
    from epbuild.stages import stages_for

    for rc in cells:
        contexts = {}
        for stage in stages_for(rc.plan):
            if stage.source is None:
                continue
            commit = rc.plan.pins[stage.source].commit
            contexts[f"src-{stage.source}"] = source_dir(stage.source, commit)
            if stage.scm_distribution is not None:
                contexts[f"scm-{stage.source}"] = f"{SCM_DIR}/{stage.source}-{commit}"
            if stage.build_requirements:
                contexts[f"wheels-{stage.source}"] = f"{WHEELHOUSE_DIR}/{stage.source}-{commit}"
        targets[rc.cell.name] = {
            "context": f"{context_root}/{rc.cell.name}",
            "dockerfile": "Dockerfile",
            "contexts": contexts,
            "target": "final",
            "tags": [rc.plan.local_tag],
        }
    doc = {"group": {"default": {"targets": list(targets)}}, "target": targets}
    return json.dumps(doc, indent=2) + "\n"
