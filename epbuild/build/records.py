"""What a build writes for `final` once it has resolved its inputs: per cell a folder with manifest.json and
versions.txt (the named context `epbuild-record`), and one bake file that adds it and the resolved labels (and,
with --push, the immutable tag) to the committed bake file's targets."""

from __future__ import annotations

import json
from pathlib import Path

from epbuild.inputs.resolve import Resolved
from epbuild.render import manifest
from epbuild.render.bakefile import serving_target
from epbuild.render.content_key import content_key
from epbuild.render.dockerfiles import RenderedCell
from epbuild.render.tags import cell_tags
from epbuild.util import atomicfs

OVERRIDE_FILE = "docker-bake.resolved.json"


def write(run_dir: Path, cells: list[RenderedCell], resolved: Resolved,
          local_contexts: dict[str, dict[str, str]] | None = None,
          push: str | None = None) -> tuple[Path, dict[str, str]]:
    """Writes the records under run_dir; returns the bake override file and each cell's content key.
    `local_contexts`: cell -> the named contexts that replace its pinned ones for components built from local
    trees (`--source`: the exported tree and what was prepared from it; epbuild/build/source_trees.py).
    `push`: the registry a cell is pushed to from the builder, under its immutable tag."""
    targets: dict[str, dict[str, object]] = {}
    keys: dict[str, str] = {}
    for rc in cells:
        key = content_key(rc, resolved)
        keys[rc.cell.name] = key
        folder = run_dir / "records" / rc.cell.name
        folder.mkdir(parents=True, exist_ok=True)
        record = manifest.manifest(rc.plan, rc.key, key, resolved)
        atomicfs.write_text(folder / "manifest.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
        atomicfs.write_text(folder / "versions.txt", manifest.versions_txt(rc.plan, key, resolved))
        contexts = {"epbuild-record": str(folder.resolve())}
        contexts.update((local_contexts or {}).get(rc.cell.name, {}))
        # The base is not re-pinned here to the resolved digest through a `docker-image://` context: BuildKit would
        # resolve that reference in a registry, which a local-only base (the offline example's) is not in, and a
        # builder importing a stage cache does so. An unpinned base is resolved just before the bake; pinning
        # `digest` in the matrix makes the build use exactly it.
        target: dict[str, object] = {"contexts": contexts, "labels": manifest.resolved_labels(rc.plan, key, resolved)}
        targets[serving_target(rc.cell.name)] = dict(target)
        if push:
            target["tags"] = [cell_tags(rc, key, push).immutable]
        targets[rc.cell.name] = target
    override = run_dir / OVERRIDE_FILE
    atomicfs.write_text(override, json.dumps({"target": targets}, indent=2) + "\n")
    return override, keys
