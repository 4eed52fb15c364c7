"""`invoke build`: fetches the selected cells' sources, then builds every selected cell in ONE bake solve so the
stages cells share are built once; keeps going past a failing cell (each survivor once more, on its own), builds
a cell once more when the engine failed it rather than its build (epbuild/build/engine_errors.py), and reports each
cell's result.

Each run keeps build/logs/<run>/: replay.sh (every command, in order), bake.log (the whole BuildKit output),
per cell <cell>.log (its vertices; all of a bake of it alone) and <cell>.sh (the bake command for that cell
alone), and summary.json (per cell: result, failing stage, log, content key, and the image ID: read from the
cell's OCI layout when it came through one (epbuild/build/reproducible.py), else the one bake reported).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shlex
import time
from pathlib import Path

from epbuild.build import build_inputs, buildlock, compile_cache, records, reproducible, stage_cache
from epbuild.build.bake_command import BuildOptions, bake_command, checkout_tag
from epbuild.build.bake_runs import Bakes, BakeStalled
from epbuild.build.builder_caps import require_cache_export
from epbuild.build.buildreport import BuildReport, CellResult, settle
from epbuild.build.engine_errors import engine_failure
from epbuild.build.run_dir import new_run_dir
from epbuild.build.source_trees import local_contexts
from epbuild.build.stage_cache import CachePlan
from epbuild.inputs.source_requests import mirror_overrides
from epbuild.registry.reads import has_manifest
from epbuild.render import dockerfiles as render
from epbuild.render.bakefile import serving_target
from epbuild.render.dockerfiles import RenderedCell, Rendering
from epbuild.util import atomicfs
from epbuild.util.commands import Runner, shell_line
from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)


def build(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
          runner: Runner) -> BuildReport:
    """Builds the cells; a real build holds the checkout's build lock throughout, so `invoke gc` deletes nothing
    it uses (epbuild/build/buildlock.py)."""
    if runner.dry_run:
        return _build(rendering, cells, root, options, runner)
    with buildlock.build_running(root):
        return _build(rendering, cells, root, options, runner)


def _build(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
           runner: Runner) -> BuildReport:
    stale = render.drift(rendering)
    if stale:
        raise EpbuildError(
            f"{rendering.out_dir} does not match {rendering.matrix.path}; run `invoke render` first:\n  "
            + "\n  ".join(stale)
        )
    run_dir = None if runner.dry_run else new_run_dir(root, "build")
    if run_dir is not None:
        runner.start_replay(run_dir / "replay.sh", root)
    cache = _cache_plan(rendering, cells, root, options, run_dir, runner)  # a builder that cannot fails here
    with build_inputs.prepared(rendering, cells, runner):
        # The trees that are built (local ones first), then every pre-bake step on them: the same steps, in the
        # same function, that `invoke bump` runs on a new pin.
        trees = build_inputs.export_trees(rendering, cells, root, options.mirrors, options.local_sources, runner)
        build_inputs.prebake(rendering, cells, root, mirror_overrides(list(options.mirrors)), runner,
                             trees).raise_for_build()
    exported = trees.pinned
    names = [rc.cell.name for rc in cells]
    results = {rc.cell.name: CellResult(rc.cell.name, rc.plan.local_tag, rc.key) for rc in cells}
    report = BuildReport(run_dir, list(results.values()))
    overlay = cache[1] if cache else None
    resolved_file = Path("build/logs/<run>") / records.OVERRIDE_FILE
    # Every cell comes reproducibly, through its OCI layout (epbuild/build/reproducible.py), then goes to the engine or,
    # with --push, to the registry; the stage cache's stage targets get the same epochs. (--stage builds no cell.)
    override = (run_dir or Path("build/logs/<run>")) / reproducible.OVERRIDE_FILE
    # Every step on the host network, compile cache or not (epbuild/build/compile_cache.py: one identity either way).
    network = (run_dir or Path("build/logs/<run>")) / compile_cache.NETWORK_OVERLAY
    layouts = not options.stage
    pushed_refs: dict[str, str] = {}

    def expanded(targets: list[str]) -> list[str]:
        return cache[0].targets(targets) if cache else targets

    def command(targets: list[str]) -> list[str]:
        return bake_command(rendering, root, expanded(targets), options, overlay, resolved_file, override, network)

    # With the compile cache, buildx reads the secrets from the environment: replays derive sccache's from the URL.
    secrets = f"{compile_cache.REPLAY_LINE}\n" if options.compile_cache else ""
    if runner.dry_run:
        print("# then each base image's digest is resolved, and each cell's record and content key written to "
              f"build/logs/<run>/records/ and {resolved_file}")
        if secrets:
            runner.record(compile_cache.REPLAY_LINE)
        runner.run(command(names), cwd=root)
        if layouts and not options.push:
            for name in names:
                for argv in reproducible.load_commands(root, override.parent, name):
                    runner.run(argv)
        return report
    assert run_dir is not None
    for tree in trees.local.values():
        log.warning("%s: building from the local tree %s (%s), uncommitted changes included; the image is marked "
                    "dirty and cannot be published", tree.component, tree.path, tree.digest)
    resolved = build_inputs.resolve_inputs(cells, exported, trees.local)
    resolved_file, keys = records.write(run_dir, cells, resolved,
                                        {rc.cell.name: local_contexts(rc, trees.local, root) for rc in cells},
                                        push=options.push)
    for name, key in keys.items():
        results[name].content_key = key
    if options.push:
        pushed_refs = reproducible.immutable_tags(cells, keys, options.push)
    for base, digest in resolved.base_digests.items():
        log.info("base image %s is %s", rendering.matrix.model.bases[base].image, digest)
    atomicfs.write_text(network, compile_cache.network_overlay([*expanded(names),
                                                                *(serving_target(n) for n in names)]))
    atomicfs.write_text(override, reproducible.bake_override(
        cells, {e.component: e.commit_time for e in exported}, root,
        {t: s.cell for t, s in cache[0].stage_targets.items()} if cache else None))
    for name in names:
        atomicfs.write_text(
            run_dir / f"{name}.sh",
            "#!/usr/bin/env bash\n# Rebuilds this cell alone, from the project root.\nset -euxo pipefail\n"
            f"cd {shlex.quote(str(root))}\n{secrets}{shell_line(command([name]))}\n"
            + "".join(f"{shell_line(argv)}\n"
                      for argv in (reproducible.load_commands(root, run_dir, name) if layouts and not options.push
                                   else []))
        )
    if secrets:
        runner.record(compile_cache.REPLAY_LINE)
    bakes = Bakes(command, expanded, _stage_target_cells(cache[0] if cache else None), root, options.quiet,
                   run_dir, report.progress, runner, names)
    start = time.monotonic()
    held = reproducible.layouts_held(root, names) if layouts else contextlib.nullcontext()
    with held:
        try:
            _rounds(bakes, report, results, names, cells, options, start)
        except BakeStalled as exc:
            for name in names:
                if not results[name].ok and not results[name].error:
                    results[name].error = str(exc)
        for result in report.results:
            if result.ok and layouts and options.push:
                reproducible.push_layout(runner, root, result, pushed_refs[result.cell])
            elif result.ok and layouts:
                reproducible.hand_over(runner, root, run_dir, result,
                                       [result.tag, checkout_tag(result.tag, root)])
    built = [name for name in names if results[name].ok]
    if options.serving and built and not options.stage:
        # Every stage is cached by now: this only writes the serving images' configs.
        with (run_dir / "bake.log").open("a") as bake_log:
            code = runner.stream(bake_command(rendering, root, [serving_target(n) for n in built], options,
                                              resolved=resolved_file, reproducible_file=override,
                                              network_file=network),
                                 cwd=root, on_line=bake_log.write)
        for name in built:
            if code != 0:
                results[name].error = f"the serving image {serving_target(name)} failed (see {run_dir}/bake.log)"
                results[name].ok = False
            elif layouts:
                serving = dataclasses.replace(results[name], cell=serving_target(name))
                reproducible.hand_over(runner, root, run_dir, serving, [serving_target(results[name].tag)])
                if not serving.ok:
                    results[name].error, results[name].ok = serving.error, False
    report.wall = time.monotonic() - start
    for result in report.results:
        result.log = str(run_dir / f"{result.cell}.log")
        if result.ok and result.image_id is None:
            result.image_id = bakes.image_ids.get(result.cell)
        atomicfs.write_text(run_dir / f"{result.cell}.log", "".join(bakes.cell_log(result.cell, results)))
    atomicfs.write_text(run_dir / "summary.txt", report.table() + "\n")
    atomicfs.write_text(run_dir / "summary.json", json.dumps(report.summary(), indent=2) + "\n")
    return report


def _rounds(bakes: Bakes, report: BuildReport, results: dict[str, CellResult], names: list[str],
            cells: list[RenderedCell], options: BuildOptions, start: float) -> None:
    # Round 1: every cell in one solve, so shared stages build once. BuildKit cancels the other targets when one
    # fails, so a failure there says nothing about the cells it cancelled.
    retried: set[str] = set()
    failed = _bake_round(bakes, report, results, [names], cells, start, retried)
    survivors = [n for n in names if n not in failed and not results[n].error]
    if failed and survivors and options.keep_going:
        # Round 2: each survivor alone, all at once, so one more failure cannot cancel the rest; every cell is
        # built once more at most, and the stages they share are shared by BuildKit's solver (or cached).
        log.warning("cells %s failed; building the others again, each on its own (finished stages are cached)",
                    ", ".join(sorted(failed)))
        _bake_round(bakes, report, results, [[n] for n in survivors], cells, start, retried)
    elif failed:
        for name in survivors:
            results[name].error = "not built: an earlier cell failed and --no-keep-going was given"


def _bake_round(bakes: Bakes, report: BuildReport, results: dict[str, CellResult], groups: list[list[str]],
                cells: list[RenderedCell], start: float, retried: set[str]) -> set[str]:
    """Bakes each group (all at once) and settles its cells; returns the cells the build failed. A cell the
    engine failed (epbuild/build/engine_errors.py), not its build, is built once more in the run: at once when its
    group failed only by the engine, else it is left unbuilt (a survivor) for round 2 to build on its own."""
    codes = bakes.run(groups)
    failed: set[str] = set()
    again: list[list[str]] = []
    for group, invocation, code in zip(groups, bakes.invocations[-len(groups):], codes):
        group_failed = settle(report, results, invocation, group, code, cells, start, bakes.bake_error(invocation))
        by_engine: dict[str, str] = {}
        for name in (n for n in group if results[n].error):  # failed here, with or without a named stage
            vertex = results[name].failed_vertex
            reason = vertex.error if vertex is not None else bakes.bake_error(invocation)
            if name not in retried and engine_failure(reason):
                by_engine[name] = reason
        failed |= group_failed - set(by_engine)
        # Only the engine failed this group: build it again, with the cells BuildKit cancelled along with it.
        rebuild = [n for n in group if not results[n].ok] if by_engine and group_failed <= by_engine.keys() else []
        if rebuild:
            again.append(rebuild)
        for name in by_engine.keys() | set(rebuild):
            retried.add(name)
            results[name].forget_failure()
            results[name].retried_after = by_engine.get(name, "cancelled with a cell the engine failed")[:300]
    if again:
        log.warning("the engine, not the build, failed %s; building them once more (%s)",
                    ", ".join(n for group in again for n in group), results[again[0][0]].retried_after[:200])
        failed |= _bake_round(bakes, report, results, again, cells, start, retried)
    return failed


def _cache_plan(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
                run_dir: Path | None, runner: Runner) -> tuple[CachePlan, Path] | None:
    """With --cache: check the builder can export caches, then write the stage-cache bake file (printed, in a
    dry run) and return it with its plan."""
    if options.stage and not options.cache:
        raise EpbuildError("--stage builds a stage into the stage cache only; name the cache with --cache REGISTRY/REPO")
    if not options.cache:
        return None
    # The stage cache's refs are named by the stages' identities, which the pins give: a stage built from a local
    # tree under them would replace the pinned stage's cache for every reader (and --stage's target is laid out
    # from the pinned trees, so it would not even build the local one). A local build may only read the cache.
    if options.local_sources and (options.stage or options.cache_export != "none"):
        given = " ".join(f"--source {s}" for s in options.local_sources)
        doing = f"--stage {options.stage}" if options.stage else f"--cache-export {options.cache_export}"
        raise EpbuildError(f"{given}: a build from a local tree does not write the stage cache ({doing} writes "
                           "refs named by the pins' stage identities); drop --stage and pass --cache-export none "
                           "to read the cache only")
    plan = stage_cache.plan(options.cache, cells, rendering.cells, export=options.cache_export,
                            only_stage=options.stage)
    require_cache_export(options.builder)
    if options.cache_export == "own" and not options.stage:
        if runner.dry_run:
            runner.record("# the fleet guard: every shared stage's ref must be in the cache, else the build stops")
        else:
            stage_cache.require_shared_refs(plan, rendering.cells, has_manifest)
    # With --push, the immutable tag comes with the content key, from the run's resolved bake file.
    outputs = {rc.cell.name: ({"output": ["type=registry"]} if options.push else {"output": ["type=docker"]})
               for rc in cells}
    text = plan.overlay(context_root=os.path.relpath(rendering.out_dir, root), cell_outputs=outputs)
    path = (run_dir or root / "build") / "stage-cache.bake.json"
    if runner.dry_run:
        print(f"# {os.path.relpath(path, root)}:\n{text}", file=runner.out)
    else:
        atomicfs.write_text(path, text)
    return plan, path


def _stage_target_cells(plan: CachePlan | None) -> dict[str, str]:
    return {} if plan is None else {target: s.cell.cell.name for target, s in plan.stage_targets.items()}
