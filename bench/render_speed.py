"""Render speed: render a generated 1,000-cell matrix. Target: under 1 s.

A valid matrix cannot reach 1,000 cells today (DeepEP and MoRI take only gfx942 and gfx950, DeepEP only three
NICs: at most 9 cells), so the matrix is generated with 334 synthetic archs x 3 NICs and rendered through the
same per-cell code path (stage contexts, templates, content keys, manifests, bake file); only the
EP-arch cross-check is left out. What is measured is how the renderer scales."""

from __future__ import annotations

import copy
import statistics
import time

import yaml

from epbuild.bakefile import bake_json
from epbuild.cells import expand
from epbuild.matrix import Matrix
from epbuild.plan import CellPlan
from epbuild.render import render_cell

from bench.results import ROOT, record


def generated_matrix(cells: int) -> Matrix:
    data = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    archs = [f"gfx9{i // 16:02d}{i % 16:x}" for i in range(-(-cells // 3))]
    data = copy.deepcopy(data)
    data["archs"] = {a: {"gpus": ["synthetic"], "agent_pool": "pool"} for a in archs}
    data["axes"]["arch"] = archs
    return Matrix.model_validate(data)


def render_all(matrix: Matrix) -> int:
    rendered = [render_cell(CellPlan(cell, matrix), "matrix.yaml") for cell in expand(matrix)]
    bake_json(rendered, context_root="images")
    files = sum(len(rc.files()) for rc in rendered)
    return files


def main() -> None:
    matrix = generated_matrix(1000)
    cells = len(expand(matrix))
    render_all(matrix)  # warm: templates compiled once per process, as in `invoke render`
    times = []
    for _ in range(5):
        start = time.perf_counter()
        files = render_all(matrix)
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    record("Render speed", [
        f"Rendering a generated {cells}-cell matrix ({files} files plus the bake file) takes {median:.3f} s "
        f"(median of 5, best {best:.3f} s). Target: under 1 s: {'met' if median < 1 else 'MISSED'}.",
    ], {"cells": cells, "files": files, "median_seconds": round(median, 4), "best_seconds": round(best, 4),
        "target_seconds": 1.0, "met": median < 1})


if __name__ == "__main__":
    main()
