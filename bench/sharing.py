"""Sharing: every cell of the offline example in ONE bake, cold, versus one `docker build --no-cache` per cell
(the way one hand-written Dockerfile per image is built). Targets: RUN steps executed / distinct = 1.00; and
the ratio of wall times, side by side. Both run on a private engine (bench/engines.py: fresh, then emptied between
the two), never on the shared one."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench.engines import base_images, private_engine
from bench.results import OFFLINE, ROOT, build_summary, invoke, record
from bench.scratch import scratch
from epbuild.build import records
from epbuild.build.run_steps import distinct_run_steps
from epbuild.cli import project
from epbuild.render.content_key import checkout_inputs


def one_cell_at_a_time(cells: list[str]) -> dict[str, float]:
    bake = json.loads((ROOT / "examples" / "offline" / "images" / "docker-bake.json").read_text())
    rendering = project.rendering(OFFLINE)
    # What `invoke build` adds to the committed bake file: each cell's record and the base image's digest.
    with scratch("sharing-records-") as tmp:
        override, _ = records.write(Path(tmp), rendering.cells, checkout_inputs(rendering, rendering.cells, ROOT))
        resolved = json.loads(override.read_text())["target"]
        return _build_each(cells, bake, resolved)


def _build_each(cells: list[str], bake: dict, resolved: dict) -> dict[str, float]:  # type: ignore[type-arg]
    walls = {}
    for name in cells:
        target = bake["target"][name]
        argv = ["docker", "buildx", "build", "--no-cache", "--progress", "quiet", "--target", "final",
                "--file", f"{target['context']}/Dockerfile", "--tag", f"epbuild-bench/one-at-a-time:{name}"]
        for key, path in {**target["contexts"], **resolved[name]["contexts"]}.items():
            argv += ["--build-context", f"{key}={path}"]
        start = time.monotonic()
        subprocess.run([*argv, target["context"]], cwd=ROOT, check=True, capture_output=True)
        walls[name] = round(time.monotonic() - start, 1)
    return walls


def main() -> None:
    invoke("sources", "--matrix", OFFLINE, "--all")  # sources and the local base image ready: time builds only
    rendering = project.rendering(OFFLINE)
    names = [rc.cell.name for rc in rendering.cells]
    distinct = distinct_run_steps(rendering.cells)
    distinct_runs = len(distinct)

    with scratch("sharing-") as tmp, \
            private_engine(OFFLINE, Path(tmp)) as engine:
        summary = build_summary("--matrix", OFFLINE, "--all")
        engine.forget_builds(base_images(OFFLINE))  # cold again for the separate builds
        walls = one_cell_at_a_time(names)
    executed = summary["executed_run_steps"]
    bake_wall = float(summary["wall_seconds"])  # type: ignore[arg-type]
    by_stage: dict[str, int] = {}
    for step in executed:  # type: ignore[union-attr]
        by_stage[step["stage"]] = by_stage.get(step["stage"], 0) + 1
    separate_wall = sum(walls.values())
    ratio = len(executed) / distinct_runs  # type: ignore[arg-type]
    record("Sharing", [
        f"{len(names)} cells ({', '.join(names)}) in one bake, cold: {len(executed)} RUN steps executed for "
        f"{distinct_runs} distinct RUN steps (epbuild/build/run_steps.py): ratio {ratio:.2f} "
        f"(target 1.00: {'met' if abs(ratio - 1) < 1e-9 else 'MISSED'}). Executed per stage: "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_stage.items())) + ".",
        f"Wall time: one bake {bake_wall:.1f} s; one `docker build --no-cache` per cell {separate_wall:.1f} s "
        f"({', '.join(f'{k} {v} s' for k, v in walls.items())}): the separate builds take "
        f"{separate_wall / bake_wall:.2f}x as long.",
    ], {"cells": len(names), "run_steps_executed": len(executed), "distinct_run_steps": distinct_runs,
        "executed_over_distinct": round(ratio, 3), "executed_by_stage": by_stage, "bake_wall_seconds": bake_wall,
        "separate_builds_wall_seconds": round(separate_wall, 1), "separate_over_bake": round(separate_wall / bake_wall, 2)})


if __name__ == "__main__":
    main()
