"""`invoke matrix`: the cells and what each builds, as a table for people or JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild.content_key import checkout_keys
from epbuild.render import Rendering
from epbuild.stages import built_pins
from epbuild.tags import cell_tags, published_name


def cells_data(rendering: Rendering, root: Path) -> list[dict[str, Any]]:
    # The content key needs the base image's digest and full commits: known here when the matrix pins them, or
    # the local engine and the sources cache have them; never fetched for a listing.
    keys = checkout_keys(rendering, rendering.cells, root, remote=False)
    out = []
    for rc in rendering.cells:
        plan = rc.plan
        key = keys[rc.cell.name]
        out.append({
            "name": rc.cell.name,
            "arch": rc.cell.arch,
            "archs": list(rc.cell.archs),
            "nic": rc.cell.nic,
            "provider": plan.nic.provider,
            "rdma_core": plan.nic.rdma_core,
            "stages": list(rc.stages),
            "components": {
                name: {"repo": pin.repo, "commit": pin.commit, "tag": pin.tag}
                for name, pin in built_pins(plan).items()
            },
            "recipe_key": rc.key,
            "content_key": key,
            "image": plan.local_tag,
            "published": published_name(rc),
            "published_immutable": cell_tags(rc, key).immutable if key else None,
            "agent_pools": {arch: plan.matrix.archs[arch].agent_pool for arch in rc.cell.archs},
        })
    return out


def as_json(rendering: Rendering, root: Path) -> str:
    return json.dumps({"matrix": str(rendering.matrix.path), "cells": cells_data(rendering, root)}, indent=2)


def as_table(rendering: Rendering, root: Path) -> str:
    rows = [("CELL", "ARCHS", "NIC", "RDMA-CORE", "STAGES", "KEY", "PUBLISHED AS")]
    for c in cells_data(rendering, root):
        rows.append((c["name"], ";".join(c["archs"]), c["nic"], c["rdma_core"], " ".join(c["stages"]),
                     (c["content_key"] or "-")[:12], c["published"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    pins = rendering.cells[0].plan.pins
    lines.append("")
    lines.append(f"{len(rendering.cells)} cells from {rendering.matrix.path}; local tags {rendering.cells[0].plan.matrix.image.name}:<cell>; "
                 "KEY: the content key (`-`: the base image's digest or a full commit is not known here yet; "
                 "`invoke sources` fetches the commits, pinning base.digest fixes the digest); pins:")
    for name, pin in pins.items():
        what = pin.commit + (f" ({pin.tag})" if pin.tag else "")
        lines.append(f"  {name:<10} {what}  {pin.repo}")
    return "\n".join(lines)
