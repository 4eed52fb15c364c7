"""`invoke build`: fetches the selected cells' sources, then builds every selected cell in ONE bake solve so the
stages cells share are built once; keeps going past a failing cell and reports each cell's result.

Each run keeps build/logs/<run>/: replay.sh (every command, in order), bake.log (the whole BuildKit output),
and per cell <cell>.log (its vertices) and <cell>.sh (the bake command for that cell alone).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from epbuild import preflight, render, sources, stage_cache, stageinputs, vendor_repo
from epbuild.bakefile import BAKE_FILE
from epbuild.commands import Runner, query, shell_line
from epbuild.errors import EpbuildError
from epbuild.buildreport import BuildReport, CellResult
from epbuild.progress import Progress, Vertex
from epbuild.render import RenderedCell, Rendering
from epbuild.builder_caps import require_cache_export
from epbuild.stage_cache import CachePlan, Export
from epbuild.stagegraph import built_pins, stage_identities
from epbuild.tags import cell_tags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    builder: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    keep_going: bool = True
    mirrors: tuple[str, ...] = ()
    quiet: bool = False
    cache: str | None = None
    """REGISTRY/REPO of the stage cache (epbuild/stage_cache.py): import every stage's ref, export each built one."""
    cache_export: Export = "all"
    stage: str | None = None
    """Build only this stage of the selected cells into the stage cache (a CI stage step)."""
    push: str | None = None
    """Push each cell from the builder to this registry under its immutable tag instead of loading it."""
    max_jobs: int | None = None
    """MAX_JOBS for compiled stages that take it (vLLM's native step); None: the builder's cores."""


def new_run_dir(root: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / "build" / "logs" / f"{stamp}-{kind}-{os.getpid()}"


def bake_command(rendering: Rendering, root: Path, targets: list[str], options: BuildOptions,
                 overlay: Path | None = None) -> list[str]:
    bake_file = os.path.relpath(rendering.out_dir / BAKE_FILE, root)
    argv = ["docker", "buildx", "bake", "--file", bake_file, "--progress", "plain"]
    if overlay is not None:  # the stage cache's targets; each target names its own output there
        argv += ["--file", os.path.relpath(overlay, root)]
    if options.builder:
        argv += ["--builder", options.builder]
    if options.push and overlay is None:
        # Straight from the builder to the registry: a remote builder's layers never visit the local engine.
        for name in targets:
            argv += ["--set", f"{name}.tags={_pushed_tag(rendering, name, options.push)}",
                     "--set", f"{name}.output=type=registry"]
    elif overlay is None:
        argv.append("--load")  # a remote or container builder must hand the image back to the local engine
    for ref in options.cache_from:
        argv += ["--set", f"*.cache-from={ref}"]
    for ref in options.cache_to:
        argv += ["--set", f"*.cache-to={ref}"]
    if options.max_jobs is not None:
        if options.max_jobs < 1:
            raise EpbuildError(f"--max-jobs must be a positive number of jobs, not {options.max_jobs}")
        argv += ["--set", f"*.args.MAX_JOBS={options.max_jobs}"]
    return argv + targets


def build(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
          runner: Runner) -> BuildReport:
    stale = render.drift(rendering)
    if stale:
        raise EpbuildError(
            f"{rendering.out_dir} does not match {rendering.matrix.path}; run `invoke render` first:\n  "
            + "\n  ".join(stale)
        )
    preflight.check(rc.plan for rc in cells)
    run_dir = None if runner.dry_run else new_run_dir(root, "build")
    if run_dir is not None:
        runner.start_replay(run_dir / "replay.sh", root)
    cache = _cache_plan(rendering, cells, root, options, run_dir, runner)  # a builder that cannot fails here
    with prepared(rendering, cells, runner):
        check_sources(rendering, fetch_sources(rendering, cells, root, options, runner), runner)
        prepare_stage_inputs(rendering, cells, root, options, runner)
        fetch_vendor(rendering, cells, root, runner)
    names = [rc.cell.name for rc in cells]
    results = {rc.cell.name: CellResult(rc.cell.name, rc.plan.local_tag) for rc in cells}
    report = BuildReport(run_dir, list(results.values()))
    overlay = cache[1] if cache else None

    def command(targets: list[str]) -> list[str]:
        return bake_command(rendering, root, cache[0].targets(targets) if cache else targets, options, overlay)

    if runner.dry_run:
        runner.run(command(names), cwd=root)
        return report
    assert run_dir is not None
    for name in names:
        (run_dir / f"{name}.sh").write_text(
            "#!/usr/bin/env bash\n# Rebuilds this cell alone, from the project root.\nset -euxo pipefail\n"
            f"cd {shlex.quote(str(root))}\n{shell_line(command([name]))}\n"
        )
    remaining = list(names)
    cell_lines: dict[str, list[str]] = {name: [] for name in names}
    start = time.monotonic()
    while remaining:
        argv = command(remaining)
        code = _stream_bake(argv, root, run_dir, report.progress, runner, cell_lines, quiet=options.quiet,
                            aliases=_stage_target_cells(cache[0] if cache else None))
        now = time.monotonic()
        if code == 0:
            for name in remaining:
                results[name].ok = True
                results[name].duration = _finish_time(report.progress, name, start, now)
            break
        failed = _failed_targets(report.progress, remaining, cells)
        if not failed:
            for name in remaining:
                results[name].error = f"bake exited {code} without naming a failing stage (see {run_dir}/bake.log)"
            break
        for name, (vertex, shared_with) in failed.items():
            results[name].failed_stage = vertex.stage or "(internal)"
            origin = "" if shared_with == name else f" (a stage shared with {shared_with}, where it failed)"
            results[name].error = f"stage {vertex.stage}{origin}: {vertex.op[:100]}: {vertex.error[:300]}"
            results[name].duration = now - start
        remaining = [n for n in remaining if n not in failed]
        if not options.keep_going:
            for name in remaining:
                results[name].error = "not built: an earlier cell failed and --no-keep-going was given"
            break
        if remaining:
            log.warning("cells %s failed; building the others again (their finished stages are cached)",
                        ", ".join(failed))
    report.wall = time.monotonic() - start
    for result in report.results:
        if result.ok and not options.push and not options.stage:
            result.image_id = _image_id(result.tag)
    for name, lines in cell_lines.items():
        (run_dir / f"{name}.log").write_text("".join(lines))
    (run_dir / "summary.txt").write_text(report.table() + "\n")
    (run_dir / "summary.json").write_text(json.dumps(report.summary(), indent=2) + "\n")
    return report


@contextlib.contextmanager
def prepared(rendering: Rendering, cells: list[RenderedCell], runner: Runner) -> Iterator[None]:
    """Makes what a matrix says it prepares locally (the offline example's base images, only those the cells
    start from, its stand-in repos and vendor apt repository), and keeps what must run while inputs are fetched
    (the example's repository server)."""
    if rendering.matrix.model.prepare == "offline-example":
        from epbuild import offline

        with offline.prepared(rendering.matrix, [rc.plan for rc in cells], runner):
            yield
    else:
        yield


def fetch_sources(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
                  runner: Runner) -> list[sources.ExportedSource]:
    wanted = list(dict.fromkeys(name for rc in cells for name in built_pins(rc.plan)))
    mirrors = sources.mirror_overrides(list(options.mirrors))
    requests = sources.requests_for(rendering.matrix, wanted, mirrors)
    return sources.fetch_all(sources.SourceCache(root, runner), requests)


def prepare_stage_inputs(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
                         runner: Runner) -> None:
    """Preflight's second pass first (a mismatch fails in seconds, before any download or build), then versions
    and wheels."""
    if runner.dry_run:
        runner.record("# preflight: every flag, variable and file each stage passes, against its source at the pin")
    else:
        stageinputs.check(rendering, cells, root)
    mirrors = sources.mirror_overrides(list(options.mirrors))
    stageinputs.versions(rendering, cells, root, sources.SourceCache(root, runner), mirrors)
    stageinputs.git_heads(rendering, cells, root, sources.SourceCache(root, runner), mirrors)
    stageinputs.source_archives(rendering, cells, root, runner)
    stageinputs.wheelhouses(cells, root, runner)


def check_sources(rendering: Rendering, exported: list[sources.ExportedSource], runner: Runner) -> None:
    """Each component's checks of its exported source (its spec's `source_check`, e.g. MoRI's NIC flags): what
    the matrix says about a pin that only the source itself can confirm, before any stage runs."""
    if runner.dry_run:
        return
    model = rendering.matrix.model
    pins = model.components.pins()
    found = [f"{source.component}: {problem}" for source in exported
             for problem in model.registry[source.component].source_check(pins[source.component], source.path)]
    if found:
        raise preflight.PreflightError("the pinned sources disagree with the matrix; nothing was built:\n  "
                                       + "\n  ".join(found))


def fetch_vendor(rendering: Rendering, cells: list[RenderedCell], root: Path,
                 runner: Runner) -> list[vendor_repo.FetchedVendor]:
    """Each selected NIC's vendor packages, verified before any stage runs (epbuild/vendor_repo.py)."""
    requests = {rc.cell.nic: vendor_repo.VendorRequest(rc.cell.nic, rc.plan.vendor)
                for rc in cells if rc.plan.vendor is not None}
    return vendor_repo.fetch_all(root, runner, list(requests.values()))


def _stream_bake(argv: list[str], root: Path, run_dir: Path, progress: Progress, runner: Runner,
                 cell_lines: dict[str, list[str]], *, quiet: bool, aliases: dict[str, str]) -> int:
    """Runs bake, showing its progress as it goes, saving all of it, and sorting each vertex's lines by cell."""
    progress.next_invocation()
    with (run_dir / "bake.log").open("a") as full:
        full.write(f"$ {shell_line(argv)}\n")

        def on_line(line: str) -> None:
            full.write(line)
            vertex = progress.feed(line)
            if vertex is not None and vertex.target in aliases:  # a stage-cache target: its vertices are its cell's
                vertex.target = aliases[vertex.target]
            if vertex is not None and vertex.target in cell_lines:
                cell_lines[vertex.target].append(line)
            if not quiet:
                sys.stdout.write(line)

        return runner.stream(argv, cwd=root, on_line=on_line)


def _cache_plan(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
                run_dir: Path | None, runner: Runner) -> tuple[CachePlan, Path] | None:
    """With --cache: check the builder can export caches, then write the stage-cache bake file (printed, in a
    dry run) and return it with its plan."""
    if options.stage and not options.cache:
        raise EpbuildError("--stage builds a stage into the stage cache only; name the cache with --cache REGISTRY/REPO")
    if not options.cache:
        return None
    plan = stage_cache.plan(options.cache, cells, rendering.cells, export=options.cache_export,
                            only_stage=options.stage)
    require_cache_export(options.builder)
    outputs = {rc.cell.name: ({"tags": [_pushed_tag(rendering, rc.cell.name, options.push)], "output": ["type=registry"]}
                              if options.push else {"output": ["type=docker"]}) for rc in cells}
    text = plan.overlay(context_root=os.path.relpath(rendering.out_dir, root), cell_outputs=outputs)
    path = (run_dir or root / "build") / "stage-cache.bake.json"
    if runner.dry_run:
        print(f"# {os.path.relpath(path, root)}:\n{text}", file=runner.out)
    else:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return plan, path


def _stage_target_cells(plan: CachePlan | None) -> dict[str, str]:
    return {} if plan is None else {target: s.cell.cell.name for target, s in plan.stage_targets.items()}


def _pushed_tag(rendering: Rendering, cell: str, registry: str) -> str:
    [rc] = [rc for rc in rendering.cells if rc.cell.name == cell]
    return cell_tags(rc, registry).immutable


def _failed_targets(progress: Progress, remaining: list[str],
                    cells: list[RenderedCell]) -> dict[str, tuple[Vertex, str]]:
    """Each remaining cell that failed, with the failing vertex and the cell BuildKit named it under. A stage
    shared by several cells is printed under one of them, but it fails every cell that contains it."""
    identities = {rc.cell.name: stage_identities(rc) for rc in cells}
    out: dict[str, tuple[Vertex, str]] = {}
    for vertex in progress.failures():
        # A cache ref not in the registry yet is an ERROR vertex, but BuildKit builds on without it.
        if vertex.target not in remaining or vertex.op.startswith("importing cache manifest"):
            continue
        failed_identity = identities[vertex.target].get(vertex.stage or "")
        for name in remaining:
            shares = failed_identity is not None and failed_identity in identities[name].values()
            if (name == vertex.target or shares) and name not in out:
                out[name] = (vertex, vertex.target)
    return out


def _finish_time(progress: Progress, target: str, start: float, fallback: float) -> float:
    ends = [v.ended for v in progress.vertices.values() if v.target == target and v.ended is not None]
    return (max(ends) if ends else fallback) - start


def _image_id(tag: str) -> str | None:
    proc = query(["docker", "image", "inspect", "--format", "{{.Id}}", tag])
    return proc.stdout.strip() if proc.returncode == 0 else None
