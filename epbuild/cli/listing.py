"""`invoke matrix`: the cells and what each builds, as a table for people or JSON for scripts. Each row is the
cell's record (the manifest its image carries), its published names, and where its GPU tests run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild.inputs.resolve import Resolved, ResolveError
from epbuild.model import stagegraph
from epbuild.render import manifest
from epbuild.render.content_key import checkout_inputs, content_key
from epbuild.render.dockerfiles import Rendering
from epbuild.render.tags import cell_tags, published_name


def cells_data(rendering: Rendering, root: Path) -> list[dict[str, Any]]:
    # The content key needs the base image's digest and full commits: known here when the matrix pins them, or
    # the local engine and the sources cache have them; never fetched for a listing.
    by_base: dict[str, Resolved | None] = {}
    for base in dict.fromkeys(rc.plan.cell.base for rc in rendering.cells):
        try:
            by_base[base] = checkout_inputs(rendering, [rc for rc in rendering.cells if rc.plan.cell.base == base],
                                            root, remote=False)
        except ResolveError:
            by_base[base] = None
    out = []
    for rc in rendering.cells:
        plan = rc.plan
        resolved = by_base[plan.cell.base]
        if resolved is None:
            row = {**manifest.facts(plan), "recipe_key": rc.key, "content_key": None,
                   "components": {name: {"repo": pin.repo, "commit": pin.commit, "tag": pin.tag}
                                  for name, pin in stagegraph.built_pins(plan).items()}}
        else:
            row = manifest.record(plan, rc.key, content_key(rc, resolved), resolved)
        row["published"] = published_name(rc)
        row["published_immutable"] = cell_tags(rc, row["content_key"]).immutable if row["content_key"] else None
        row["agent_pools"] = {arch: info.agent_pool for arch, info in plan.archs.items()}
        out.append(row)
    return out


def as_json(rendering: Rendering, root: Path) -> str:
    return json.dumps({"matrix": str(rendering.matrix.path), "cells": cells_data(rendering, root)}, indent=2)


def as_table(rendering: Rendering, root: Path) -> str:
    rows = [("CELL", "ARCHS", "NIC", "BASE", "RDMA-CORE", "STAGES", "KEY", "PUBLISHED AS")]
    for c in cells_data(rendering, root):
        rows.append((c["cell"], ";".join(c["archs"]), c["nic"], c["base"], c["rdma_core"], " ".join(c["stages"]),
                     (c["content_key"] or "-")[:12], c["published"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    pins = rendering.cells[0].plan.pins
    lines.append("")
    lines.append(f"{len(rendering.cells)} cells from {rendering.matrix.path}; local tags "
                 f"{rendering.cells[0].plan.matrix.image.name}:<cell>. KEY is the content key (`-`: the base image's "
                 "digest or a full commit is not known here yet; `invoke sources` fetches the commits, base.digest "
                 "pins the digest). Pins:")
    for name, pin in pins.items():
        what = pin.commit + (f" ({pin.tag})" if pin.tag else "")
        lines.append(f"  {name:<10} {what}  {pin.repo}")
    return "\n".join(lines)
