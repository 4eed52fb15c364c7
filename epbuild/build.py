"""`invoke build`: fetches the selected cells' sources, then builds every selected cell in ONE bake solve so the
stages cells share are built once; keeps going past a failing cell (each survivor once more, on its own) and
reports each cell's result.

Each run keeps build/logs/<run>/: replay.sh (every command, in order), bake.log (the whole BuildKit output),
per cell <cell>.log (its vertices; all of a bake of it alone) and <cell>.sh (the bake command for that cell
alone), and summary.json (per cell: result, failing stage, log, content key, and the image ID: read from the
cell's OCI layout when it came through one (epbuild/reproducible.py), else the one bake reported).
"""

from __future__ import annotations

import dataclasses

import contextlib
import hashlib
import json
import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from epbuild import local_source, preflight, records, render, reproducible, requirements, sources, stage_cache
from epbuild import stageinputs, timeouts, vendor_repo
from epbuild.bakefile import BAKE_FILE, serving_target
from epbuild.commands import CommandStalled, Runner, query, shell_line
from epbuild.errors import EpbuildError
from epbuild.buildreport import BuildReport, CellResult
from epbuild.progress import Progress, Vertex
from epbuild.render import RenderedCell, Rendering
from epbuild.builder_caps import require_cache_export
from epbuild.resolve import FULL_COMMIT, Resolved, base_digest
from epbuild.stage_cache import CachePlan, Export
from epbuild.stagegraph import built_pins, stage_identities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    builder: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    keep_going: bool = True
    mirrors: tuple[str, ...] = ()
    quiet: bool = False
    no_cache: bool = False
    cache: str | None = None
    """REGISTRY/REPO of the stage cache (epbuild/stage_cache.py): import every stage's ref, export each built one."""
    cache_export: Export = "all"
    stage: str | None = None
    """Build only this stage of the selected cells into the stage cache (a CI stage step)."""
    push: str | None = None
    """Push each cell from the builder to this registry under its immutable tag instead of loading it."""
    max_jobs: int | None = None
    """MAX_JOBS for compiled stages that take it (vLLM's native step); None: the builder's cores."""
    serving: bool = False
    """Also tag each built cell's serving image (target vllm-openai) as <image>:<cell>-vllm-openai."""
    local_sources: tuple[str, ...] = ()
    """COMPONENT=PATH: build a component from a local working tree (uncommitted changes included)."""


def new_run_dir(root: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return root / "build" / "logs" / f"{stamp}-{kind}-{os.getpid()}"


def bake_command(rendering: Rendering, root: Path, targets: list[str], options: BuildOptions,
                 overlay: Path | None = None, resolved: Path | None = None,
                 reproducible_file: Path | None = None) -> list[str]:
    """`resolved`: the run's bake file of resolved inputs (epbuild.records: each cell's record, labels, base
    digest and, with --push, its immutable tag), laid over the committed one and the stage cache's. With
    `reproducible_file` (reproducible.bake_override's file) each cell goes to its OCI layout with rewritten
    timestamps, which `docker load` then hands to the engine; else, without the stage cache's `overlay` or
    --push, straight to the engine (--load)."""
    bake_file = os.path.relpath(rendering.out_dir / BAKE_FILE, root)
    argv = ["docker", "buildx", "bake", "--file", bake_file, "--progress", "plain"]
    if overlay is not None:  # the stage cache's targets; each target names its own output there
        argv += ["--file", os.path.relpath(overlay, root)]
    if resolved is not None:
        argv += ["--file", str(resolved)]
    if reproducible_file is not None:
        argv += ["--file", str(reproducible_file)]
    if options.builder:
        argv += ["--builder", options.builder]
    if options.push and overlay is None:
        # Straight from the builder to the registry (under the tag the resolved file names): a remote builder's
        # layers never visit the local engine.
        for name in targets:
            argv += ["--set", f"{name}.output=type=registry"]
    elif overlay is None and reproducible_file is None:
        argv.append("--load")  # a remote or container builder must hand the image back to the local engine
    if options.no_cache:
        argv.append("--no-cache")
    for ref in options.cache_from:
        argv += ["--set", f"*.cache-from={ref}"]
    for ref in options.cache_to:
        argv += ["--set", f"*.cache-to={ref}"]
    if options.max_jobs is not None:
        if options.max_jobs < 1:
            raise EpbuildError(f"--max-jobs must be a positive number of jobs, not {options.max_jobs}")
        argv += ["--set", f"*.args.MAX_JOBS={options.max_jobs}"]
    if not options.push and not options.stage:
        tags = {rc.cell.name: rc.plan.local_tag for rc in rendering.cells}
        for name in (t for t in targets if t in tags):
            argv += ["--set", f"{name}.tags={tags[name]}", "--set", f"{name}.tags={checkout_tag(tags[name], root)}"]
    return argv + targets


def checkout_tag(local_tag: str, root: Path) -> str:
    """A second tag, of this checkout alone, on each image it builds. The local tag is shared by every checkout on
    the engine, and with the containerd image store an image whose last tag moves is deleted: this one keeps
    the image this checkout built (recorded by ID in its run) until its own next build of the cell."""
    return f"{local_tag}-checkout-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]}"


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
        locals_ = local_source.parse(list(options.local_sources), list(rendering.matrix.model.components.pins()))
        exported = fetch_sources(rendering, cells, root, options, runner, skip=set(locals_))
        check_sources(rendering, exported, runner)
        prepare_stage_inputs(rendering, cells, root, options, runner)
        fetch_vendor(rendering, cells, root, runner)
    names = [rc.cell.name for rc in cells]
    results = {rc.cell.name: CellResult(rc.cell.name, rc.plan.local_tag, rc.key) for rc in cells}
    report = BuildReport(run_dir, list(results.values()))
    overlay = cache[1] if cache else None
    resolved_file = Path("build/logs/<run>") / records.OVERRIDE_FILE
    # Images that come back to this engine come reproducibly, through OCI layouts (epbuild/reproducible.py).
    # The stage cache's targets and --push name their own outputs.
    override = None if cache or options.push else (run_dir or Path("build/logs/<run>")) / reproducible.OVERRIDE_FILE

    def expanded(targets: list[str]) -> list[str]:
        return cache[0].targets(targets) if cache else targets

    def command(targets: list[str]) -> list[str]:
        return bake_command(rendering, root, expanded(targets), options, overlay, resolved_file, override)

    if runner.dry_run:
        print("# then each base image's digest is resolved, and each cell's record and content key written to "
              f"build/logs/<run>/records/ and {resolved_file}")
        runner.run(command(names), cwd=root)
        if override is not None:
            for name in names:
                for argv in reproducible.load_commands(root, override.parent, name):
                    runner.run(argv)
        return report
    assert run_dir is not None
    trees = {name: local_source.export(name, path, root) for name, path in locals_.items()}
    for tree in trees.values():
        log.warning("%s: building from the local tree %s (%s), uncommitted changes included; the image is marked "
                    "dirty and cannot be published", tree.component, tree.path, tree.digest)
    resolved = resolve_inputs(cells, exported, trees)
    resolved_file, keys = records.write(run_dir, cells, resolved, {name: t.export for name, t in trees.items()},
                                        push=options.push)
    for name, key in keys.items():
        results[name].content_key = key
    for base, digest in resolved.base_digests.items():
        log.info("base image %s is %s", rendering.matrix.model.bases[base].image, digest)
    if override is not None:
        override.write_text(reproducible.bake_override(cells, {e.component: e.commit_time for e in exported},
                                                       root))
    for name in names:
        (run_dir / f"{name}.sh").write_text(
            "#!/usr/bin/env bash\n# Rebuilds this cell alone, from the project root.\nset -euxo pipefail\n"
            f"cd {shlex.quote(str(root))}\n{shell_line(command([name]))}\n"
            + "".join(f"{shell_line(argv)}\n"
                      for argv in (reproducible.load_commands(root, run_dir, name) if override else []))
        )
    bakes = _Bakes(command, expanded, _stage_target_cells(cache[0] if cache else None), root, options.quiet,
                   run_dir, report.progress, runner, names)
    start = time.monotonic()
    held = reproducible.layouts_held(root, names) if override is not None else contextlib.nullcontext()
    with held:
        try:
            _rounds(bakes, report, results, names, cells, options, start)
        except BakeStalled as exc:
            for name in names:
                if not results[name].ok and not results[name].error:
                    results[name].error = str(exc)
        for result in report.results:
            if result.ok and override is not None:
                reproducible.hand_over(runner, root, run_dir, result,
                                       [result.tag, checkout_tag(result.tag, root)])
    built = [name for name in names if results[name].ok]
    if options.serving and built and not options.stage:
        # Every stage is cached by now: this only writes the serving images' configs.
        with (run_dir / "bake.log").open("a") as bake_log:
            code = runner.stream(bake_command(rendering, root, [serving_target(n) for n in built], options,
                                              resolved=resolved_file, reproducible_file=override),
                                 cwd=root, on_line=bake_log.write)
        for name in built:
            if code != 0:
                results[name].error = f"the serving image {serving_target(name)} failed (see {run_dir}/bake.log)"
                results[name].ok = False
            elif override is not None:
                serving = dataclasses.replace(results[name], cell=serving_target(name))
                reproducible.hand_over(runner, root, run_dir, serving, [serving_target(results[name].tag)])
                if not serving.ok:
                    results[name].error, results[name].ok = serving.error, False
    report.wall = time.monotonic() - start
    for result in report.results:
        result.log = str(run_dir / f"{result.cell}.log")
        if result.ok and result.image_id is None:
            result.image_id = bakes.image_ids.get(result.cell)
        (run_dir / f"{result.cell}.log").write_text("".join(bakes.cell_log(result.cell, results)))
    (run_dir / "summary.txt").write_text(report.table() + "\n")
    (run_dir / "summary.json").write_text(json.dumps(report.summary(), indent=2) + "\n")
    return report


def resolve_inputs(cells: list[RenderedCell], exported: list[sources.ExportedSource],
                   trees: dict[str, local_source.LocalTree] | None = None) -> Resolved:
    """The exact inputs of this build: each base image's digest, the full commit of every fetched pin, and the
    content of each local tree (with the commit it is based on, where it is a git checkout)."""
    trees = trees or {}
    commits = {source.component: source.commit for source in exported}
    commits.update({name: tree.head or "" for name, tree in trees.items()})
    bases = {rc.plan.cell.base: rc.plan.base for rc in cells}
    return Resolved(base_digests={name: base_digest(base) for name, base in bases.items()}, commits=commits,
                    dirty={name: tree.digest for name, tree in trees.items()},
                    local_paths={name: str(tree.path) for name, tree in trees.items()})


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
                  runner: Runner, skip: set[str] | None = None) -> list[sources.ExportedSource]:
    """Fetches and exports the cells' pinned sources, but for the components in `skip` (built from local trees),
    and checks each pin's `requires` against its history."""
    wanted = [name for name in dict.fromkeys(name for rc in cells for name in built_pins(rc.plan))
              if name not in (skip or set())]
    mirrors = sources.mirror_overrides(list(options.mirrors))
    requests = sources.requests_for(rendering.matrix, wanted, mirrors)
    cache = sources.SourceCache(root, runner)
    exported = sources.fetch_all(cache, requests)
    if not runner.dry_run:
        for request, source in zip(requests, exported):
            if not request.pin.requires:
                continue
            mirror = cache.mirror_for(request.url)
            if not (mirror / "HEAD").exists():  # a cached export whose mirror was removed: fetch the history again
                mirror = cache.fetch_refs(request, [source.commit])
            requirements.check(request.component, mirror, request.pin, source.commit)
    return exported


def fetch_abbreviated(rendering: Rendering, cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Fetches the cells' sources when a pin abbreviates its commit: the content key needs the full one."""
    if any(len(pin.commit) < FULL_COMMIT for rc in cells for pin in built_pins(rc.plan).values()):
        fetch_sources(rendering, cells, root, BuildOptions(), runner)


def prepare_stage_inputs(rendering: Rendering, cells: list[RenderedCell], root: Path, options: BuildOptions,
                         runner: Runner) -> None:
    """Preflight's second pass first (a mismatch fails in seconds, before any download or build), then versions
    and wheels."""
    if runner.dry_run:
        runner.record("# preflight: every flag, variable and file each stage passes, against its source at the pin")
    else:
        stageinputs.check(rendering, cells, root)
        stageinputs.rust_toolchains(rendering, cells, root)
    mirrors = sources.mirror_overrides(list(options.mirrors))
    stageinputs.versions(rendering, cells, root, sources.SourceCache(root, runner), mirrors)
    stageinputs.git_heads(rendering, cells, root, sources.SourceCache(root, runner), mirrors)
    stageinputs.source_archives(rendering, cells, root, runner)
    stageinputs.wheelhouses(cells, root, runner)
    stageinputs.crates(cells, root, runner)


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


def _rounds(bakes: _Bakes, report: BuildReport, results: dict[str, CellResult], names: list[str],
            cells: list[RenderedCell], options: BuildOptions, start: float) -> None:
    # Round 1: every cell in one solve, so shared stages build once. BuildKit cancels the other targets when one
    # fails, so a failure there says nothing about the cells it cancelled.
    (code,) = bakes.run([names])
    failed = _settle(report, results, bakes.invocations[0], names, code, cells, start)
    survivors = [n for n in names if n not in failed and not results[n].error]
    if failed and survivors and options.keep_going:
        # Round 2: each survivor alone, all at once, so one more failure cannot cancel the rest; every cell is
        # built once more at most, and the stages they share are shared by BuildKit's solver (or cached).
        log.warning("cells %s failed; building the others again, each on its own (finished stages are cached)",
                    ", ".join(failed))
        codes = bakes.run([[n] for n in survivors])
        for name, invocation, code in zip(survivors, bakes.invocations[1:], codes):
            _settle(report, results, invocation, [name], code, cells, start)
    elif failed:
        for name in survivors:
            results[name].error = "not built: an earlier cell failed and --no-keep-going was given"


class BakeStalled(EpbuildError):
    """Bake printed nothing for longer than its silence limit, so it was stopped rather than waited on."""


def _settle(report: BuildReport, results: dict[str, CellResult], invocation: int, targets: list[str], code: int,
            cells: list[RenderedCell], start: float) -> set[str]:
    """Records what one bake invocation says about its targets; returns the cells it failed."""
    now = time.monotonic()
    if code == 0:
        for name in targets:
            results[name].ok = True
            results[name].duration = _finish_time(report.progress, name, start, now)
        return set()
    failed = _failed_targets(report.progress, invocation, targets, cells)
    for name, (vertex, shared_with) in failed.items():
        results[name].failed_stage = vertex.stage or "(internal)"
        results[name].failed_vertex = vertex
        origin = "" if shared_with == name else f" (a stage shared with {shared_with}, where it failed)"
        results[name].error = f"stage {vertex.stage}{origin}: {vertex.op[:100]}: {vertex.error[:300]}"
        results[name].duration = now - start
    if not failed:
        for name in targets:
            results[name].error = f"bake exited {code} without naming a failing stage"
    return set(failed)


class _Bakes:
    """Runs bake invocations (several at once, each in a thread), saving all output to bake.log, sorting each
    line to its cell's log, and reading each built image's ID from bake's metadata file (the image this run
    built, whatever the shared tag names by the time anyone looks)."""

    def __init__(self, command: Callable[[list[str]], list[str]], expanded: Callable[[list[str]], list[str]],
                 aliases: dict[str, str], root: Path, quiet: bool, run_dir: Path, progress: Progress, runner: Runner,
                 names: list[str]) -> None:
        # The bake command for some cells, the bake targets they amount to (with the stage cache's), and the cell
        # each stage-cache target belongs to.
        self.command, self.expanded, self.aliases = command, expanded, aliases
        self.root, self.quiet, self.run_dir, self.progress, self.runner = root, quiet, run_dir, progress, runner
        self.invocations: list[int] = []
        self.cell_lines: dict[str, list[str]] = {name: [] for name in names}
        self.image_ids: dict[str, str] = {}
        self._output = threading.Lock()

    def run(self, groups: list[list[str]]) -> list[int]:
        """One bake per group of targets, all at once; their exit codes in order."""
        invocations = [self.progress.start(self.expanded(targets)) for targets in groups]
        self.invocations += invocations
        with (self.run_dir / "bake.log").open("a", buffering=1) as full:  # line by line: a kill loses nothing
            if len(groups) == 1:
                return [self._bake(groups[0], invocations[0], full, prefix="")]
            codes: list[int] = [0] * len(groups)
            errors: list[BaseException] = []

            def one(i: int) -> None:
                try:
                    codes[i] = self._bake(groups[i], invocations[i], full, prefix=f"{groups[i][0]} | ")
                except BaseException as exc:  # re-raised below, in the caller's thread
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(groups))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        return codes

    def _bake(self, targets: list[str], invocation: int, full: IO[str], prefix: str) -> int:
        metadata = self.run_dir / f"metadata-{invocation}.json"
        argv = self.command(targets)
        bake_targets = len(self.expanded(targets))
        argv[-bake_targets:-bake_targets] = ["--metadata-file", str(metadata)]
        with self._output:
            full.write(f"{prefix}$ {shell_line(argv)}\n")
        alone = targets[0] if bake_targets == 1 else None

        def on_line(line: str) -> None:
            vertex = self.progress.feed(line, invocation)
            if vertex is not None and vertex.target in self.aliases:  # a stage-cache target: its vertices are its cell's
                vertex.target = self.aliases[vertex.target]
            with self._output:
                full.write(prefix + line)
                if not self.quiet:
                    sys.stdout.write(prefix + line)
            # A bake of one target prints everything about that target (its errors too, outside any vertex).
            owner = alone or (vertex.target if vertex is not None else None)
            if owner in self.cell_lines:
                self.cell_lines[owner].append(line)

        try:
            code = self.runner.stream(argv, cwd=self.root, on_line=on_line,
                                      silence=timeouts.BAKE_SILENCE.seconds(), silence_setting=timeouts.BAKE_SILENCE.env)
        except CommandStalled as exc:
            running = [f"[{v.target}{' ' + v.stage if v.stage else ''}] {v.op[:120]}"
                       for (number, _), v in self.progress.vertices.items()
                       if number == invocation and v.status == "RUNNING"]
            message = (f"bake printed nothing for {exc.silence:g} s and was stopped (raise the limit with "
                       f"{timeouts.BAKE_SILENCE.env}); " + (f"still running: {'; '.join(running)}" if running
                                                             else f"its last line: {exc.reason or '(none)'}"))
            with self._output:
                full.write(f"{prefix}epbuild: {message}\n")
            raise BakeStalled(message) from None
        self._read_image_ids(metadata, targets)
        return code

    def _read_image_ids(self, metadata: Path, targets: list[str]) -> None:
        try:
            doc = json.loads(metadata.read_text())
        except (OSError, ValueError):
            return
        for name in targets:
            entry = doc.get(name) if isinstance(doc, dict) else None
            if isinstance(entry, dict):
                # The containerd image store names an image by its manifest digest, the classic one by its config's.
                for key in ("containerimage.digest", "containerimage.config.digest"):
                    if isinstance(entry.get(key), str) and _image_id(entry[key]) == entry[key]:
                        self.image_ids[name] = entry[key]
                        break

    def cell_log(self, name: str, results: dict[str, CellResult]) -> list[str]:
        """The cell's lines, plus those of the vertex that failed it when BuildKit printed that vertex under
        another cell (a shared stage)."""
        lines = self.cell_lines[name]
        vertex = results[name].failed_vertex
        if vertex is not None and vertex.target != name:
            lines = [*lines, f"# the failing stage, printed under {vertex.target}:\n", *vertex.lines]
        return lines


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
    # With --push, the immutable tag comes with the content key, from the run's resolved bake file.
    outputs = {rc.cell.name: ({"output": ["type=registry"]} if options.push else {"output": ["type=docker"]})
               for rc in cells}
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


def _failed_targets(progress: Progress, invocation: int, remaining: list[str],
                    cells: list[RenderedCell]) -> dict[str, tuple[Vertex, str]]:
    """Each cell of the invocation that failed, with the failing vertex and the cell BuildKit named it under. A
    stage shared by several cells is printed under one of them, but it fails every cell that contains it."""
    identities = {rc.cell.name: stage_identities(rc) for rc in cells}
    out: dict[str, tuple[Vertex, str]] = {}
    for vertex in progress.failures(invocation):
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
