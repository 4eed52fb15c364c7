"""The tasks that build and check: `invoke build`, `sources` and `test`."""

from __future__ import annotations

import contextlib
import os

from invoke import Context, Exit

from epbuild.cli.taskflags import CELL_HELP, logging_setup, selected_cells, task, user_errors


@task(
    iterable=["arch", "nic", "base", "cell", "cache_from", "cache_to", "mirror", "source"],
    help={
        **CELL_HELP,
        "dry_run": "Print the commands a build would run (source fetches, bake) and build nothing.",
        "builder": "A buildx builder to use (remote BuildKit, Kubernetes, ...); default: the engine's own.",
        "cache_from": "A BuildKit cache source handed to bake, e.g. type=registry,ref=REG/cache:rocshmem.",
        "cache_to": "A BuildKit cache destination handed to bake (needs a builder that can export caches).",
        "cache": "REGISTRY/REPO: the stage cache; import every stage's ref, export each built stage to its own ref.",
        "cache_export": "With --cache: export `all` stages built (default), `own`: those no other cell shares (CI's "
                        "cell steps), or `none`: import only (read-only access).",
        "stage": "With --cache: build only this stage of the selected cells into the cache (a CI stage step).",
        "push": "REGISTRY: push each cell straight from the builder under its immutable tag instead of loading it.",
        "keep_going": "Build the other cells when one fails (default on; --no-keep-going stops).",
        "mirror": "COMPONENT=URL: fetch a component from a mirror (also EPBUILD_MIRROR_<COMPONENT>=URL).",
        "quiet": "Do not echo BuildKit's progress (it is still saved under build/logs/).",
        "no_cache": "Run every step again, ignoring BuildKit's cache (a rebuild of the same pins gives the same image).",
        "max_jobs": "Compile jobs for the vLLM native step (default: the builder's cores).",
        "serving": "Also tag each cell's serving image (vLLM's vllm-openai: ENTRYPOINT vllm serve) as "
                   "<image>:<cell>-vllm-openai.",
        "source": "COMPONENT=PATH: build a component from a local working tree, uncommitted changes included "
                  "(the image is marked dirty; publish refuses it).",
        "compile_cache": "URL of the fleet's shared compile cache (ccache remote storage: redis://[[USER:]PASSWORD@]"
                         "HOST[:PORT] or http(s)://HOST[:PORT]/PATH); default: EPBUILD_COMPILE_CACHE. Reaches the "
                         "compile steps as a BuildKit secret: no image or log holds it.",
    },
)
@user_errors
def build(c: Context, matrix: str = "matrix.yaml", arch: list[str] | None = None, nic: list[str] | None = None,
          base: list[str] | None = None, all: bool = False, cell: list[str] | None = None, dry_run: bool = False, builder: str | None = None, cache_from: list[str] | None = None,
          cache_to: list[str] | None = None, keep_going: bool = True, mirror: list[str] | None = None,
          quiet: bool = False, cache: str | None = None, cache_export: str = "all", stage: str | None = None,
          push: str | None = None, no_cache: bool = False, max_jobs: int = 0, source: list[str] | None = None,
          serving: bool = False, compile_cache: str | None = None) -> None:
    """Build the selected cells with BuildKit, in one bake so shared stages build once."""
    from epbuild.build import compile_cache as shared_ccache
    from epbuild.build import flow as builder_mod
    from epbuild.build.bake_command import BuildOptions
    from epbuild.build.bake_command import cache_export as export_choice
    from epbuild.build.stage_cache import checked_repo
    from epbuild.cli import project
    from epbuild.registry.credentials import registry_login
    from epbuild.render.tags import checked_registry
    from epbuild.util.commands import Runner

    logging_setup()
    if cache is not None:
        checked_repo(cache)  # an empty --cache (an unset CI variable) is refused, never read as "no cache"
    cache_url = shared_ccache.chosen_url(compile_cache)
    if cache_url is not None:
        # buildx reads the secrets from these variables: the command line and replay.sh name only the variables.
        os.environ.update(shared_ccache.environment(cache_url))
    r, cells = selected_cells(matrix, arch, nic, all, cell, base)
    options = BuildOptions(builder=builder, cache_from=tuple(cache_from or ()),
                                       cache_to=tuple(cache_to or ()), keep_going=keep_going,
                                       mirrors=tuple(mirror or ()), quiet=quiet, no_cache=no_cache, cache=cache,
                                       cache_export=export_choice(cache_export), stage=stage,
                                       push=checked_registry(push) if push is not None else None,
                                       max_jobs=max_jobs or None, local_sources=tuple(source or ()),
                                       serving=serving, compile_cache=cache_url is not None)
    runner = Runner(dry_run=dry_run)
    # BuildKit pushes the stage cache with the docker CLI's credentials.
    login = registry_login(cache.split("/", 1)[0], runner) if cache else contextlib.nullcontext()
    with login:
        report = builder_mod.build(r, cells, project.ROOT, options, runner)
    if dry_run:
        return
    print(report.table())
    if not report.ok:
        raise Exit(code=1)


@task(iterable=["arch", "nic", "base", "cell", "mirror"],
      help={**CELL_HELP, "mirror": "COMPONENT=URL: fetch from a mirror.", "dry_run": "Print the fetch commands only."})
@user_errors
def sources(c: Context, matrix: str = "matrix.yaml", arch: list[str] | None = None, nic: list[str] | None = None,
            base: list[str] | None = None, all: bool = False, cell: list[str] | None = None, mirror: list[str] | None = None,
            dry_run: bool = False) -> None:
    """Fetch and export the pinned sources of the selected cells into build/sources/, and their NICs' verified
    vendor packages into build/vendor/."""
    from epbuild.build import build_inputs
    from epbuild.cli import project
    from epbuild.util.commands import Runner

    logging_setup()
    r, cells = selected_cells(matrix, arch, nic, all, cell, base)
    print("\n".join(build_inputs.fetch_inputs(r, cells, project.ROOT, mirror or [], Runner(dry_run=dry_run))))


@task(iterable=["arch", "nic", "base", "cell", "gpu_arch"],
      help={**CELL_HELP, "image": "Check this image reference as the selected cell (one cell only).",
            "gpu": "Run the GPU tier (epbuild/checks/gpu) instead of the static checks; needs AMD GPUs.",
            "require_gpu": "With --gpu: fail, instead of reporting 'not run', on a host without AMD GPUs (CI agents).",
            "gpu_arch": "With --gpu: fail unless this host's GPUs include this arch (CI: the pool's archs, so a pool "
                        "override that names other hardware fails).",
            "quiet": "Only the summary, not pytest's per-check lines.",
            "dry_run": "With --gpu: print each GPU case's command and what it asserts; run nothing."})
@user_errors
def test(c: Context, matrix: str = "matrix.yaml", arch: list[str] | None = None, nic: list[str] | None = None,
         base: list[str] | None = None, all: bool = False, cell: list[str] | None = None, image: str | None = None, gpu: bool = False,
         require_gpu: bool = False, gpu_arch: list[str] | None = None, quiet: bool = False, dry_run: bool = False) -> None:
    """Check built images from the inside (testinfra): by default the image this checkout's newest build of the
    cell made, by ID (the local tag is shared by every checkout); a JUnit report per cell goes to build/reports/."""
    from epbuild.checks import imagetest
    from epbuild.cli import project

    r, cells = selected_cells(matrix, arch, nic, all, cell, base)
    if gpu_arch:
        imagetest.require_archs(gpu_arch, cells)
    runs = imagetest.check_cells(r, cells, image, project.ROOT, gpu=gpu, quiet=quiet, dry_run=dry_run)
    print(imagetest.summary(runs))
    if any(not run.ok for run in runs) or (require_gpu and any(run.not_run for run in runs)):
        raise Exit(code=1)
