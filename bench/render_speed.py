"""Render speed: render a generated 1,000-cell matrix. Target: at most 0.3 s (median of 5).

A valid matrix cannot reach 1,000 cells today (DeepEP and MoRI take only gfx942 and gfx950, DeepEP only three
NICs: at most 9 cells), so the matrix is generated with 334 synthetic archs x 3 NICs and rendered through the
same per-cell code path (stage contexts, templates, content keys, manifests, bake file); only the
EP-arch cross-check is left out. What is measured is how the renderer scales.

Each timed render gets a matrix of its own, made before the clock starts: what a render derives from its matrix
once (epbuild.plan.matrix_memo) never carries over from one run to the next, as between two `invoke render`s.
The process's CPU time is recorded beside the wall time: other processes' load does not count in it, which is what
the test suite checks (tests/core/test_benchmark_targets.py)."""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import yaml

from epbuild.bakefile import bake_json
from epbuild.cells import expand
from epbuild.matrix import Matrix
from epbuild.plan import CellPlan
from epbuild.render import render_cell

from bench.results import ROOT, record

CELLS = 1000
RUNS = 5
TARGET_SECONDS = 0.3


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


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def timed_renders(cells: int = CELLS, runs: int = RUNS) -> tuple[int, list[Timing]]:
    """(files per render, each run's wall and CPU seconds), every run on a fresh matrix."""
    render_all(generated_matrix(cells))  # warm: templates compiled once per process, as in `invoke render`
    matrices = [generated_matrix(cells) for _ in range(runs)]
    timings, files = [], 0
    for matrix in matrices:
        wall, cpu = time.perf_counter(), time.process_time()
        files = render_all(matrix)
        timings.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))
    return files, timings


def main() -> None:
    cells = len(expand(generated_matrix(CELLS)))
    files, timings = timed_renders()
    walls = [t.wall for t in timings]
    median, best = statistics.median(walls), min(walls)
    cpu = statistics.median(t.cpu for t in timings)
    met = median <= TARGET_SECONDS
    record("Render speed", [
        f"Rendering a generated {cells}-cell matrix ({files} files plus the bake file) takes {median:.3f} s "
        f"(median of {RUNS}, each on a fresh matrix; best {best:.3f} s; CPU time {cpu:.3f} s). Target: at most "
        f"{TARGET_SECONDS} s: {'met' if met else 'MISSED'}.",
        "Other processes may share the machine's cores while this runs: the wall time is only as good as the "
        "machine was idle (the CPU time shows how much of it was this render's).",
    ], {"cells": cells, "files": files, "median_seconds": round(median, 4), "best_seconds": round(best, 4),
        "median_cpu_seconds": round(cpu, 4), "target_seconds": TARGET_SECONDS, "met": met})


if __name__ == "__main__":
    main()
