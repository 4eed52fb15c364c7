"""Fleet: the generated pipeline's build steps on N fresh engines that share one registry stage cache.

Runs the `invoke build` of every shared-stage step and every cell step of the Buildkite pipeline generated for the
offline example (the staging registry replaced by a docker-registry on 127.0.0.1), on N separate dockerd
instances (bench/engines.py), in dependency order, independent steps concurrently, and counts the RUN steps
executed on all engines together. Figures:
- cold fleet: RUN steps executed / distinct RUN steps (target 1.00: each distinct one built once, fleet-wide);
- vLLM's pin moved, engines emptied again: the stages the fleet re-executes (target: vllm and final only);
- wall time against one cell per fresh engine with no cache (today's pipeline), on the same N engines.
`--runs N` runs the cold fleet N times (engines emptied, a fresh registry each time) and reports each run's ratio,
and which cell steps executed a RUN step of a shared stage: the target is 1.00 on every run.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.engines import FreshEngine, base_images, save_images
from bench.results import OFFLINE, ROOT, invoke, record
from bench.scratch import new_scratch
from epbuild.build.run_steps import distinct_run_steps
from epbuild.build.stage_cache import shared_identities
from epbuild.ci import pipelines
from epbuild.cli import project
from epbuild.model.stagegraph import component_of, stage_identities
from epbuild.offline import matrix_variant

CACHE = re.compile(r"\"\$\$\{EPBUILD_CI_CACHE:\?[^}]*\}\"")


@dataclass
class Step:
    key: str
    argv: list[str]
    needs: list[str]
    executed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def pipeline_steps(matrix: str, registry: str) -> list[Step]:
    """The `invoke build` of each stage and cell step of the Buildkite pipeline generated for `matrix`."""
    text = pipelines.buildkite(project.rendering(matrix), matrix)
    steps = []
    for step in yaml.safe_load(text)["steps"]:
        # Each `invoke build` is preceded by the cache login's variables, which the fresh engines do not need.
        build = [part[part.index("invoke build "):] for part in step["command"].split(" && ") if "invoke build " in part]
        if not build:
            continue
        needs = [n for n in step.get("depends_on", []) if n != "check"]
        argv = shlex.split(CACHE.sub(f"{registry}/epbuild-cache", build[0]))
        steps.append(Step(step["key"], [sys.executable, "-m", *argv, "--quiet"], needs))
    return steps


def run_step(step: Step, engine: FreshEngine) -> None:
    start = time.monotonic()
    proc = subprocess.run(step.argv, cwd=ROOT, env=engine.env, capture_output=True, text=True)
    step.seconds = time.monotonic() - start
    found = re.search(r"logs and replayable commands: (\S+)", proc.stdout)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"step {step.key} failed on engine {engine.index}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    import json

    step.executed = json.loads((Path(found.group(1)) / "summary.json").read_text())["executed_run_steps"]


def run_fleet(steps: list[Step], engines: list[FreshEngine]) -> float:
    """Runs the steps on the engines: each free engine takes the next step whose needs are done."""
    done: set[str] = set()
    started: set[str] = set()
    lock = threading.Condition()
    errors: list[BaseException] = []

    def agent(engine: FreshEngine) -> None:
        while True:
            with lock:
                while True:
                    if errors or len(started) == len(steps):
                        return
                    ready = [s for s in steps if s.key not in started and all(n in done for n in s.needs)]
                    if ready:
                        step = ready[0]
                        started.add(step.key)
                        break
                    lock.wait()
            try:
                run_step(step, engine)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
            with lock:
                done.add(step.key)
                lock.notify_all()

    start = time.monotonic()
    threads = [threading.Thread(target=agent, args=(e,), daemon=True) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - start


def stage_of(run: dict[str, Any]) -> str:
    # A bake of one target prints no target name (`[vllm 1/1]`, read as target `vllm`, stage `1/1`).
    stage = run["stage"]
    return str(run["target"] if stage is None or re.fullmatch(r"\d+/\d+", stage) else stage)


def executed_by_stage(steps: list[Step]) -> dict[str, int]:
    out: dict[str, int] = {}
    for step in steps:
        for run in step.executed:
            out[stage_of(run)] = out.get(stage_of(run), 0) + 1
    return out


def uncached_cells(cells: list[str], engines: list[FreshEngine], matrix: str, keep: tuple[str, ...]) -> float:
    """Today's pipeline: each cell on an engine emptied first, no cache; cells spread over the engines. Returns the
    busiest engine's build time (emptying an engine is not counted)."""
    busy = [0.0] * len(engines)
    queue = list(cells)
    lock = threading.Lock()

    def agent(i: int) -> None:
        while True:
            with lock:
                if not queue:
                    return
                cell = queue.pop(0)
            engines[i].forget_builds(keep)
            step = Step(cell, [sys.executable, "-m", "invoke", "build", "--matrix", matrix, "--cell", cell,
                               "--quiet"], [])
            run_step(step, engines[i])
            busy[i] += step.seconds

    threads = [threading.Thread(target=agent, args=(i,), daemon=True) for i in range(len(engines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(busy)


@dataclass
class ColdRun:
    """One cold fleet: a fresh registry, engines emptied of every build."""

    steps: list[Step]
    wall: float
    distinct: int
    shared: dict[str, set[str]]

    @property
    def executed(self) -> int:
        return sum(len(s.executed) for s in self.steps)

    @property
    def ratio(self) -> float:
        return round(self.executed / self.distinct, 2)

    def figures(self) -> dict[str, object]:
        return {"run_steps_executed": self.executed, "executed_over_distinct": self.ratio,
                "executed_by_stage": executed_by_stage(self.steps), "wall_seconds": round(self.wall, 1),
                "steps_that_executed_a_shared_stage": shared_stage_runs(self.steps, self.shared)}


def shared_stages(matrix: str) -> dict[str, set[str]]:
    """{cell: the stages it shares with another cell}: what the pipeline gives to stage steps, so its cell step
    only imports them (epbuild/build/stage_cache.py shared_identities)."""
    cells = project.rendering(matrix).cells
    shared = shared_identities(cells)
    return {rc.cell.name: {name for name, identity in stage_identities(rc).items() if identity in shared}
            for rc in cells}


def shared_stage_runs(steps: list[Step], shared: dict[str, set[str]]) -> dict[str, list[str]]:
    """Cell steps (`--cache-export own`) that executed a RUN step of a stage their cell shares (`shared`, from
    shared_stages): which stages. With the fleet guard (epbuild/build/stage_cache.py require_shared_refs) a cell
    step stops rather than compile a shared stage whose ref is missing; what shows here ran although the ref was
    there (its cache key differed from the stage step's). A cell's own stages are its step's to run."""
    out: dict[str, list[str]] = {}
    for step in steps:
        if step.key.startswith("build-"):
            cell = step.key.removeprefix("build-")
            stages = sorted({stage_of(run) for run in step.executed} & shared.get(cell, set()))
            if stages:
                out[step.key] = stages
    return out


def cold_fleet(engines: list[FreshEngine], bases: tuple[str, ...], work: Path, index: int, distinct: int,
               registry_class: Any) -> ColdRun:
    """The pipeline's steps on the engines, emptied first, with a registry of their own (nothing cached)."""
    folder = work / f"registry-{index}"
    folder.mkdir()
    registry = registry_class(folder)
    try:
        for engine in engines:
            engine.forget_builds(bases)
        steps = pipeline_steps(OFFLINE, f"127.0.0.1:{registry.port}")
        wall = run_fleet(steps, engines)
    finally:
        registry.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return ColdRun(steps, wall, distinct, shared_stages(OFFLINE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2, help="fresh engines (N >= 2)")
    parser.add_argument("--runs", type=int, default=1,
                        help="cold fleets, one after the other, each on emptied engines and a fresh registry "
                             "(target 1.00 on every one)")
    args = parser.parse_args()
    if args.agents < 2:
        parser.error("--agents must be at least 2")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from registry import Registry  # the tests' docker-registry on 127.0.0.1

    rendering = project.rendering(OFFLINE)
    bases = base_images(OFFLINE)
    invoke("sources", "--matrix", OFFLINE, "--all")  # prepares the offline example, then fetches its sources
    work = new_scratch("fleet-")
    (work / "registry").mkdir()
    registry = Registry(work / "registry")
    engines = [FreshEngine(work / f"engine{i}", i) for i in range(args.agents)]
    distinct = len(distinct_run_steps(rendering.cells))
    try:
        tar = save_images(bases, work / "bases.tar")
        for engine in engines:
            engine.start()
        with ThreadPoolExecutor(len(engines)) as pool:  # list() re-raises a failed load here
            list(pool.map(lambda engine: engine.load(tar, bases), engines))
        tar.unlink()
        cache = f"127.0.0.1:{registry.port}"

        # The first cold run fills `registry`, which the vLLM move then builds on; the others get their own.
        first = pipeline_steps(OFFLINE, cache)
        runs = [ColdRun(first, run_fleet(first, engines), distinct, shared_stages(OFFLINE))]
        for index in range(1, args.runs):
            runs.append(cold_fleet(engines, bases, work, index, distinct, Registry))

        moved = matrix_variant(work / "vllm-moved", moved=["vllm"])
        label = os.path.relpath(moved, ROOT)
        invoke("render", "--matrix", label)
        for engine in engines:
            engine.forget_builds(bases)
        after_move = pipeline_steps(label, cache)
        moved_wall = run_fleet(after_move, engines)
        moved_stages = executed_by_stage(after_move)

        uncached = uncached_cells([rc.cell.name for rc in rendering.cells], engines, OFFLINE, bases)
    finally:
        for engine in engines:
            engine.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    cold = runs[0]
    all_met = all(run.ratio == 1.0 for run in runs)
    vllm_target = {"vllm", "final"}  # vLLM's stages (its requirements stage is vLLM's too) and final
    vllm_met = {component_of(stage) for stage in moved_stages} == vllm_target
    lines = [
        f"{args.agents} fresh engines (separate dockerd instances) sharing one docker-registry stage cache on "
        f"127.0.0.1 ran the {len(cold.steps)} build steps of the generated pipeline "
        f"({len(cold.steps) - len(rendering.cells)} shared-stage steps, {len(rendering.cells)} cell steps), in "
        "dependency order, independent steps at once.",
        f"Cold fleet, {len(runs)} run(s), each on emptied engines and a fresh registry: RUN steps executed for "
        f"{distinct} distinct: " + ", ".join(f"{run.executed} (ratio {run.ratio:.2f})" for run in runs)
        + f" (target 1.00 on every run: {'met' if all_met else 'MISSED'}). Per stage, first run: "
        + ", ".join(f"{k} {v}" for k, v in sorted(executed_by_stage(cold.steps).items())) + ".",
        *[f"Run {i + 1}: cell steps that executed a shared stage: "
          + "; ".join(f"{key}: {', '.join(stages)}" for key, stages in run.figures()[  # type: ignore[union-attr]
              "steps_that_executed_a_shared_stage"].items()) + "."
          for i, run in enumerate(runs) if run.figures()["steps_that_executed_a_shared_stage"]],
        "vLLM's pin moved, engines emptied: the fleet re-executed "
        + ", ".join(f"{k} (x{v})" for k, v in sorted(moved_stages.items()))
        + f"; target vLLM's stages and final only: {'met' if vllm_met else 'MISSED'} "
        f"({moved_wall:.1f} s).",
        f"Wall time: the cold fleet {cold.wall:.1f} s; one cell per emptied engine without a cache (today's "
        f"pipeline) {uncached:.1f} s on the same {args.agents} engines: {uncached / cold.wall:.2f}x as long.",
        "Other builds may share the machine's cores while this runs: wall times compare within one run only.",
    ]
    figures = {
        "agents": args.agents,
        "steps": len(cold.steps),
        "distinct_run_steps": distinct,
        "cold_runs": [run.figures() for run in runs],
        "met_on_every_run": all_met,
        "run_steps_executed": cold.executed,
        "executed_over_distinct": cold.ratio,
        "executed_by_stage": executed_by_stage(cold.steps),
        "vllm_move_stages": sorted(moved_stages),
        "vllm_move_executed_by_stage": moved_stages,
        "vllm_move_met": vllm_met,
        "cold_fleet_wall_seconds": round(cold.wall, 1),
        "vllm_move_wall_seconds": round(moved_wall, 1),
        "one_cell_per_engine_no_cache_seconds": round(uncached, 1),
        "no_cache_over_fleet": round(uncached / cold.wall, 2),
    }
    record("Fleet", lines, figures)


if __name__ == "__main__":
    main()
