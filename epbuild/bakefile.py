"""The buildx bake file: one target per cell, each fed its sources as named contexts `src-<component>`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from epbuild.render import RenderedCell

BAKE_FILE = "docker-bake.json"
SOURCES_DIR = "build/sources"
"""Where `invoke sources` exports each component's tree, relative to the folder builds run from."""


VENDOR_DIR = "build/vendor"
VENDOR_CONTEXT = "vendor-debs"
"""The named context of the `vendor` stage (templates/stages/vendor.Dockerfile.j2 mounts it)."""


def source_dir(component: str, commit: str) -> str:
    return f"{SOURCES_DIR}/{component}-{commit}"


def vendor_dir(nic: str, digest: str) -> str:
    """Where epbuild/vendor_repo.py leaves a NIC's verified .debs, relative to the folder builds run from."""
    return f"{VENDOR_DIR}/{nic}-{digest[:16]}"


def bake_json(cells: list[RenderedCell], *, context_root: str) -> str:
    targets = {}
    from epbuild.stages import stages_for

    for rc in cells:
        contexts = {
            f"src-{stage.source}": source_dir(stage.source, rc.plan.pins[stage.source].commit)
            for stage in stages_for(rc.plan)
            if stage.source is not None
        }
        if rc.plan.vendor is not None:
            contexts[VENDOR_CONTEXT] = vendor_dir(rc.cell.nic, rc.plan.vendor.digest())
        targets[rc.cell.name] = {
            "context": f"{context_root}/{rc.cell.name}",
            "dockerfile": "Dockerfile",
            "contexts": contexts,
            "target": "final",
            "tags": [rc.plan.local_tag],
        }
    doc = {"group": {"default": {"targets": list(targets)}}, "target": targets}
    return json.dumps(doc, indent=2) + "\n"
