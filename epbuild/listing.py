"""`invoke matrix`: the cells and what each builds, as a table for people or JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from epbuild.render import Rendering
from epbuild.stages import built_pins


def cells_data(rendering: Rendering) -> list[dict[str, Any]]:
    out = []
    for rc in rendering.cells:
        plan = rc.plan
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
            "content_key": rc.key,
            "image": plan.local_tag,
            "agent_pools": {arch: plan.matrix.archs[arch].agent_pool for arch in rc.cell.archs},
        })
    return out


def as_json(rendering: Rendering) -> str:
    return json.dumps({"matrix": str(rendering.matrix.path), "cells": cells_data(rendering)}, indent=2)


def as_table(rendering: Rendering) -> str:
    rows = [("CELL", "ARCHS", "NIC", "RDMA-CORE", "STAGES", "KEY", "IMAGE")]
    for c in cells_data(rendering):
        rows.append((c["name"], ";".join(c["archs"]), c["nic"], c["rdma_core"], " ".join(c["stages"]),
                     c["content_key"][:12], c["image"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    pins = rendering.cells[0].plan.pins
    lines.append("")
    lines.append(f"{len(rendering.cells)} cells from {rendering.matrix.path}; pins:")
    for name, pin in pins.items():
        what = pin.commit + (f" ({pin.tag})" if pin.tag else "")
        lines.append(f"  {name:<10} {what}  {pin.repo}")
    return "\n".join(lines)
