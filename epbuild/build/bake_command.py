"""What a build is asked to do (BuildOptions), and the `docker buildx bake` command line it makes of them for some
targets: the rendered bake file, with the stage cache's, the run's resolved inputs and the reproducible export's
laid over it, and where each image goes (the local engine under its local and checkout tags, a registry)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from epbuild.build import compile_cache
from epbuild.build.stage_cache import Export
from epbuild.render.bakefile import BAKE_FILE
from epbuild.render.dockerfiles import Rendering
from epbuild.util.errors import EpbuildError

EXPORTS: tuple[Export, ...] = ("all", "own", "none")


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
    """REGISTRY/REPO of the stage cache (epbuild/build/stage_cache.py): import every stage's ref, export each built one."""
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
    compile_cache: bool = False
    """Hand the compile steps the shared compile cache whose URL EPBUILD_COMPILE_CACHE holds, as a BuildKit secret
    (epbuild/build/compile_cache.py); the URL itself is never part of the options or the command line."""


def bake_command(rendering: Rendering, root: Path, targets: list[str], options: BuildOptions,
                 overlay: Path | None = None, resolved: Path | None = None,
                 reproducible_file: Path | None = None, network_file: Path | None = None) -> list[str]:
    """`resolved`: the run's bake file of resolved inputs (epbuild.build.records: each cell's record, labels, base
    digest and, with --push, its immutable tag), laid over the committed one and the stage cache's. With
    `reproducible_file` (reproducible.bake_override's file) each cell goes to its OCI layout with rewritten
    timestamps, which `docker load` then hands to the engine or, with --push, epbuild uploads to the registry;
    else, without the stage cache's `overlay`, straight to the engine (--load). `network_file`
    (compile_cache.network_overlay's file) runs every step on the host network, with or without the compile cache,
    so that the steps' identities do not depend on it."""
    bake_file = os.path.relpath(rendering.out_dir / BAKE_FILE, root)
    argv = ["docker", "buildx", "bake", "--file", bake_file, "--progress", "plain"]
    if overlay is not None:  # the stage cache's targets; each target names its own output there
        argv += ["--file", os.path.relpath(overlay, root)]
    if resolved is not None:
        argv += ["--file", str(resolved)]
    if reproducible_file is not None:
        argv += ["--file", str(reproducible_file)]
    if network_file is not None:
        argv += ["--file", str(network_file)]
    if options.compile_cache:
        argv += compile_cache.bake_arguments()
    if options.builder:
        argv += ["--builder", options.builder]
    # With --push too, each cell goes to its OCI layout (the reproducible file's output), which is then uploaded.
    if overlay is None and reproducible_file is None:
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


def cache_export(value: str) -> Export:
    """--cache-export's value, checked."""
    for export in EXPORTS:
        if value == export:
            return export
    raise EpbuildError(f"--cache-export {value!r}: expected `all`, `own` or `none`")
