"""`invoke matrix`: the cells and what each builds, as a table for people or JSON for scripts. Each row is the
cell's record (the manifest its image carries) plus where its GPU tests run."""

from __future__ import annotations

import json
from typing import Any

from epbuild import manifest
from epbuild.render import Rendering


def cells_data(rendering: Rendering) -> list[dict[str, Any]]:
    out = []
    for rc in rendering.cells:
        row = manifest.record(rc.plan, rc.key)
        row["agent_pools"] = {arch: info.agent_pool for arch, info in rc.plan.archs.items()}
        out.append(row)
    return out


def as_json(rendering: Rendering) -> str:
    return json.dumps({"matrix": str(rendering.matrix.path), "cells": cells_data(rendering)}, indent=2)


def as_table(rendering: Rendering) -> str:
    rows = [("CELL", "ARCHS", "NIC", "BASE", "RDMA-CORE", "STAGES", "KEY", "IMAGE")]
    for c in cells_data(rendering):
        rows.append((c["cell"], ";".join(c["archs"]), c["nic"], c["base"], c["rdma_core"], " ".join(c["stages"]),
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
