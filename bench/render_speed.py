"""Render speed: render a generated 1,000-cell matrix. Target: at most 0.3 s (median of 5).

A valid matrix cannot reach 1,000 cells today (DeepEP and MoRI take only gfx942 and gfx950, DeepEP only three
NICs: at most 9 cells), so the matrix is generated with 334 synthetic archs x 3 NICs and rendered through the
same per-cell code path (stage contexts, templates, content keys, manifests, bake file); only the
EP-arch cross-check is left out. What is measured is how the renderer scales.

Each timed render gets a matrix of its own, made before the clock starts: what a render derives from its matrix
once (epbuild.model.plan.matrix_memo) never carries over from one run to the next, as between two `invoke render`s.
The process's CPU time is recorded beside the wall time: other processes' load does not count in it, which is what
the test suite checks (tests/core/test_benchmark_targets.py)."""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.results import ROOT, record
from epbuild.model.cells import expand
from epbuild.model.matrix import Matrix
from epbuild.model.plan import CellPlan
from epbuild.render.bakefile import bake_json
from epbuild.render.dockerfiles import render_cell

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


# One timed render of a fresh generated matrix by the epbuild in the current folder, printed as "wall cpu": only
# APIs every renderer since the stage graph has (so --against can run it on an older commit's tree).
ONE_RUN = """
import copy, sys, time, yaml
from pathlib import Path
try:
    from epbuild.render.bakefile import bake_json
    from epbuild.model.cells import expand
    from epbuild.model.matrix import Matrix
    from epbuild.model.plan import CellPlan
    from epbuild.render.dockerfiles import render_cell
except ImportError:  # a commit before epbuild's subpackages (b983ae6)
    from epbuild.bakefile import bake_json
    from epbuild.cells import expand
    from epbuild.matrix import Matrix
    from epbuild.plan import CellPlan
    from epbuild.render import render_cell
def matrix():
    data = copy.deepcopy(yaml.safe_load(Path("matrix.yaml").read_text()))
    archs = [f"gfx9{i // 16:02d}{i % 16:x}" for i in range(-(-int(sys.argv[1]) // 3))]
    data["archs"] = {a: {"gpus": ["synthetic"], "agent_pool": "pool"} for a in archs}
    data["axes"]["arch"] = archs
    return Matrix.model_validate(data)
def render(m):
    bake_json([render_cell(CellPlan(c, m), "matrix.yaml") for c in expand(m)], context_root="images")
render(matrix())
m = matrix()
wall, cpu = time.perf_counter(), time.process_time()
render(m)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def against(commit: str, runs: int = RUNS) -> tuple[list[Timing], list[Timing]]:
    """This checkout's renderer and `commit`'s, one timed render each in turn (a process per render), so both
    meet the same load: (this checkout's timings, the commit's)."""
    import subprocess
    import sys
    import tempfile

    def one(folder: Path) -> Timing:
        out = subprocess.run([sys.executable, "-c", ONE_RUN, str(CELLS)], cwd=folder, capture_output=True,
                             text=True, check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder)}).stdout
        wall, cpu = out.split()
        return Timing(float(wall), float(cpu))

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "epbuild", "templates", "matrix.yaml",
                                  "tasks.py"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(one(ROOT))
            theirs.append(one(Path(tmp)))
    return ours, theirs


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m bench.render_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="COMMIT",
                        help="also time COMMIT's renderer, a render of each in turn, and report the ratio of the "
                             "medians: a comparison the machine's load disturbs far less than either figure")
    args = parser.parse_args()
    cells = len(expand(generated_matrix(CELLS)))
    files, timings = timed_renders()
    walls = [t.wall for t in timings]
    median, best = statistics.median(walls), min(walls)
    cpu = statistics.median(t.cpu for t in timings)
    met = median <= TARGET_SECONDS
    lines = [
        f"Rendering a generated {cells}-cell matrix ({files} files plus the bake file) takes {median:.3f} s "
        f"(median of {RUNS}, each on a fresh matrix; best {best:.3f} s; CPU time {cpu:.3f} s). Target: at most "
        f"{TARGET_SECONDS} s: {'met' if met else 'MISSED'}.",
        "Other processes may share the machine's cores while this runs: the wall time is only as good as the "
        "machine was idle (the CPU time shows how much of it was this render's).",
    ]
    figures: dict[str, object] = {
        "cells": cells, "files": files, "median_seconds": round(median, 4), "best_seconds": round(best, 4),
        "median_cpu_seconds": round(cpu, 4), "target_seconds": TARGET_SECONDS, "met": met}
    if args.against:
        ours, theirs = against(args.against)
        ratio = statistics.median(t.wall for t in ours) / statistics.median(t.wall for t in theirs)
        cpu_ratio = statistics.median(t.cpu for t in ours) / statistics.median(t.cpu for t in theirs)
        lines.append(f"Against {args.against}, one render of each in turn ({RUNS} each, a process per render): "
                     f"{statistics.median(t.wall for t in ours):.3f} s vs "
                     f"{statistics.median(t.wall for t in theirs):.3f} s (median wall), {ratio:.2f}x its time "
                     f"({cpu_ratio:.2f}x its CPU time).")
        figures["against"] = {"commit": args.against,
                              "median_seconds": round(statistics.median(t.wall for t in ours), 4),
                              "their_median_seconds": round(statistics.median(t.wall for t in theirs), 4),
                              "wall_ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3)}
    record("Render speed", lines, figures)


if __name__ == "__main__":
    main()
