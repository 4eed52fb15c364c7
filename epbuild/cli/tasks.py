"""epbuild's command line: thin invoke tasks over the `epbuild` package. `invoke --list` shows them all."""

from __future__ import annotations

import contextlib
import sys

from invoke import Context, Exit

from epbuild.cli.taskflags import logging_setup, task, user_errors
from epbuild.util.errors import EpbuildError

MATRIX_HELP = {"matrix": "The build matrix file (default: matrix.yaml)."}
CELL_HELP = {
    **MATRIX_HELP,
    "arch": "Arch of the cells to act on (repeatable; an axes.arch value of the matrix, e.g. gfx942+gfx950).",
    "nic": "NIC of the cells to act on (repeatable; an axes.nic value of the matrix).",
    "base": "Base of the cells to act on (repeatable; an axes.base value of the matrix).",
    "all": "Act on every cell of the matrix.",
    "cell": "A cell by name, e.g. gfx950-cx7 (repeatable; combines with --arch/--nic selections).",
}


@task(help={**MATRIX_HELP, "json": "Print JSON for scripts instead of a table."})
@user_errors
def matrix(c: Context, matrix: str = "matrix.yaml", json: bool = False) -> None:
    """List the cells of the matrix and what each builds."""
    from epbuild.cli import listing, project

    r = project.rendering(matrix)
    print(listing.as_json(r, project.ROOT) if json else listing.as_table(r, project.ROOT))


@task(help={**MATRIX_HELP, "check": "Render in memory and fail, naming the files, if images/ differs."})
@user_errors
def render(c: Context, matrix: str = "matrix.yaml", check: bool = False) -> None:
    """Render the matrix into images/<cell>/ and images/docker-bake.json, and README.md's stage diagram."""
    from epbuild.cli import project
    from epbuild.render import rendered

    r = project.rendering(matrix)
    if check:
        _fail_on_drift(f"{r.out_dir} is out of date with {r.matrix.path} and the templates", "render", matrix,
                       rendered.drift(r, project.ROOT))
        print(f"{r.out_dir}: up to date ({len(r.cells)} cells)")
        return
    print("\n".join(rendered.write(r, project.ROOT)))


def _fail_on_drift(what: str, task: str, matrix: str, problems: list[str]) -> None:
    if problems:
        option = "" if matrix == "matrix.yaml" else f" --matrix {matrix}"
        print(f"{what}; run `invoke {task}{option}`:\n" + "\n".join(f"  {line}" for line in problems), file=sys.stderr)
        raise Exit(code=1)


@task(help={"output": "Write the schema to this file (default: matrix.schema.json)."})
@user_errors
def schema(c: Context, output: str = "matrix.schema.json") -> None:
    """Export the matrix schema as JSON Schema, for editors and CI."""
    from epbuild.cli import project
    from epbuild.model import schema as matrix_schema

    path = project.matrix_path(output)
    matrix_schema.write(path)
    print(f"wrote {path}")


def _cells(matrix: str, arch: list[str] | None, nic: list[str] | None, all: bool,  # type: ignore[no-untyped-def]
           cell: list[str] | None = None, base: list[str] | None = None):
    from epbuild.cli import project

    return project.selected(matrix, arch or [], nic or [], everything=all, names=cell, bases=base)


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
    },
)
@user_errors
def build(c: Context, matrix: str = "matrix.yaml", arch: list[str] | None = None, nic: list[str] | None = None,
          base: list[str] | None = None, all: bool = False, cell: list[str] | None = None, dry_run: bool = False, builder: str | None = None, cache_from: list[str] | None = None,
          cache_to: list[str] | None = None, keep_going: bool = True, mirror: list[str] | None = None,
          quiet: bool = False, cache: str | None = None, cache_export: str = "all", stage: str | None = None,
          push: str | None = None, no_cache: bool = False, max_jobs: int = 0, source: list[str] | None = None,
          serving: bool = False) -> None:
    """Build the selected cells with BuildKit, in one bake so shared stages build once."""
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
    r, cells = _cells(matrix, arch, nic, all, cell, base)
    options = BuildOptions(builder=builder, cache_from=tuple(cache_from or ()),
                                       cache_to=tuple(cache_to or ()), keep_going=keep_going,
                                       mirrors=tuple(mirror or ()), quiet=quiet, no_cache=no_cache, cache=cache,
                                       cache_export=export_choice(cache_export), stage=stage,
                                       push=checked_registry(push) if push is not None else None,
                                       max_jobs=max_jobs or None, local_sources=tuple(source or ()),
                                       serving=serving)
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
    r, cells = _cells(matrix, arch, nic, all, cell, base)
    print("\n".join(build_inputs.fetch_inputs(r, cells, project.ROOT, mirror or [], Runner(dry_run=dry_run))))


@task(iterable=["arch", "nic", "base", "cell", "gpu_arch"],
      help={**CELL_HELP, "image": "Check this image reference as the selected cell (one cell only).",
            "gpu": "Run the GPU tier (tests/gpu) instead of the static checks; needs AMD GPUs.",
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

    r, cells = _cells(matrix, arch, nic, all, cell, base)
    if gpu_arch:
        imagetest.require_archs(gpu_arch, cells)
    runs = imagetest.check_cells(r, cells, image, project.ROOT, gpu=gpu, quiet=quiet, dry_run=dry_run)
    print(imagetest.summary(runs))
    if any(not run.ok for run in runs) or (require_gpu and any(run.not_run for run in runs)):
        raise Exit(code=1)


def _run_dir_runner(kind: str):  # type: ignore[no-untyped-def]
    from epbuild.build.run_dir import replaying_runner
    from epbuild.cli import project

    runner, run_dir = replaying_runner(project.ROOT, kind)
    print(f"logs and replayable commands: {run_dir}")
    return runner


@task(iterable=["arch", "nic", "base", "cell"],
      help={**CELL_HELP, "registry": "Publish to this registry instead of the matrix's image.registry.",
            "digest": "Publish exactly the local image with this ID (sha256:..., from `invoke pull --digest`), and "
                      "refuse a registry whose immutable tag names another (one cell only; CI's publish step).",
            "staging": "Push the image even when the registry holds its immutable tag, and move no tags (a staging "
                       "namespace; CI's build step).",
            "digest_file": "Write the digest the registry holds for the immutable tag to this file (one cell only).",
            "dry_run": "Print the commands only."})
@user_errors
def publish(c: Context, matrix: str = "matrix.yaml", arch: list[str] | None = None, nic: list[str] | None = None,
            base: list[str] | None = None, all: bool = False, cell: list[str] | None = None, registry: str | None = None,
            digest: str | None = None, staging: bool = False, digest_file: str | None = None,
            dry_run: bool = False) -> None:
    """Push built cells: the immutable <cell>-<key12> tag first, then move <cell> once the registry holds it."""
    from pathlib import Path

    from epbuild.model.patterns import DIGEST
    from epbuild.release import publish as publisher
    from epbuild.release.publish import cell_registry_login
    from epbuild.render.tags import checked_registry
    from epbuild.util import atomicfs

    logging_setup()
    r, cells = _cells(matrix, arch, nic, all, cell, base)
    if (digest is not None or digest_file) and len(cells) != 1:
        raise EpbuildError(f"--digest and --digest-file name one cell's image, but the selection has {len(cells)}")
    if digest is not None and not DIGEST.fullmatch(digest):
        raise EpbuildError(f"--digest {digest!r} is not an image digest: expected sha256: and 64 hexadecimal digits"
                           + (" (is the variable that should hold it unset?)" if not digest else ""))
    if staging and (digest is not None or not checked_registry(registry)):
        raise EpbuildError("--staging pushes this checkout's build to a staging namespace: give --registry, "
                           "and not --digest")
    if dry_run:
        from epbuild.release.dryrun import publish_lines

        print("\n".join(line for rc in cells for line in publish_lines(rc, registry)))
        return
    if staging:
        from epbuild.build.buildreport import recorded_image
        from epbuild.cli import project
        from epbuild.render.content_key import checkout_inputs, content_key

        # The image this checkout's build made, by ID: the local tag is engine-wide, and another build on the
        # agent may have moved it since.
        resolved = checkout_inputs(r, cells, project.ROOT)
        built = {rc.cell.name: recorded_image(project.ROOT, rc.plan.local_tag, content_key(rc, resolved))
                 for rc in cells}
    runner = _run_dir_runner("publish")
    with cell_registry_login(cells[0], registry, runner):
        for rc in cells:
            own = built[rc.cell.name] if staging else None
            result = publisher.publish(rc, runner, registry, digest=own[0] if own else digest, staging=staging)
            print(result.line())
    if digest_file:
        atomicfs.write_text(Path(digest_file), result.digest + "\n")


@task(iterable=["arch", "nic", "base", "cell"],
      help={**CELL_HELP, "registry": "Pull from this registry instead of the matrix's image.registry.",
            "build": "Build the cell when the registry has no image for this checkout's key.",
            "detect": "Pick the cell from this host's GPU (KFD topology) and RDMA NIC (PCI vendor).",
            "sysfs_root": "Read the host from this sysfs tree instead of /sys (for tests).",
            "rocm_version_file": "Read the host's ROCm release from this file (for tests).",
            "digest": "Pull exactly this digest (sha256:...) of the cell's image, check it was built from this "
                      "checkout, and tag nothing (one cell only; CI's GPU and publish steps).",
            "dry_run": "Print the commands only."})
@user_errors
def pull(c: Context, matrix: str = "matrix.yaml", arch: list[str] | None = None, nic: list[str] | None = None,
         base: list[str] | None = None, all: bool = False, cell: list[str] | None = None, registry: str | None = None, build: bool = False,
         detect: bool = False, sysfs_root: str = "/sys", rocm_version_file: str = "/opt/rocm/.info/version",
         digest: str | None = None, dry_run: bool = False) -> None:
    """Fetch prebuilt images for the current checkout's pins (by content key) and tag them locally."""
    from pathlib import Path

    from epbuild.build import flow as builder_mod
    from epbuild.build.bake_command import BuildOptions
    from epbuild.checks import detect as detector
    from epbuild.cli import project
    from epbuild.release import pull as puller
    from epbuild.util.commands import Runner

    logging_setup()
    if detect and (arch or nic or cell or all):
        raise EpbuildError("--detect picks the cell from this host; it cannot be combined with --arch, --nic, "
                           "--cell or --all")
    if detect:
        found = detector.detect(Path(sysfs_root), project.load(matrix).model, Path(rocm_version_file))
        print(f"detected {found.report}: arch {found.arch}, nic {found.nic}, base {found.base or '(any)'}")
        arch, nic, base = [found.arch], [found.nic], [found.base] if found.base else base
    r, cells = _cells(matrix, arch, nic, all, cell, base)
    if digest is not None:
        from epbuild.release.publish import cell_registry_login

        if len(cells) != 1 or build or detect:
            raise EpbuildError("--digest pulls one cell's image: select exactly one cell, without --build or --detect")
        runner = Runner(dry_run=dry_run) if dry_run else _run_dir_runner("pull")
        with cell_registry_login(cells[0], registry, runner):
            print(f"{cells[0].cell.name}: pulled {puller.pull_digest(cells[0], digest, runner, registry)}")
        return
    if dry_run:
        from epbuild.release.dryrun import pull_plan

        print("\n".join(pull_plan(r, cells, project.ROOT, registry, build)))
        return
    missing = puller.pull_cells(r, cells, project.ROOT, _run_dir_runner("pull"), registry, keep_missing=build)
    if missing:
        report = builder_mod.build(r, missing, project.ROOT, BuildOptions(), Runner(dry_run=dry_run))
        print(report.table())
        if not report.ok:
            raise Exit(code=1)


@task(positional=["component", "ref"], iterable=["mirror"],
      help={**MATRIX_HELP, "component": "The component whose pin moves, e.g. deepep.",
            "ref": "A branch, tag or commit of the component's repository.",
            "mirror": "COMPONENT=URL: resolve from a mirror (also EPBUILD_MIRROR_<COMPONENT>=URL).",
            "dry_run": "Resolve, check and print the log, the plan and the checks; write nothing to the matrix or "
                       "images/ (the sources cache may fetch, and build/ get the checked inputs)."})
@user_errors
def bump(c: Context, component: str, ref: str, matrix: str = "matrix.yaml", mirror: list[str] | None = None,
         dry_run: bool = False) -> None:
    """Move a pin to the commit a branch, tag or commit names, if it passes every check a build runs before bake;
    print the upstream log, the rebuild plan and each check."""
    from epbuild.cli import project
    from epbuild.inputs.source_requests import mirror_overrides
    from epbuild.pinning import bump as bumper

    result = bumper.bump(project.load(matrix), component, ref, project.ROOT, mirror_overrides(mirror or []),
                         dry_run=dry_run)
    print(result.report())


@task(iterable=["mirror"],
      help={**MATRIX_HELP,
            "check": "Exit non-zero on a difference from the reference the matrix does not explain "
                     "(reference_differs).",
            "write": "Move the matrix to the reference (comments kept) and re-render images/.",
            "mirror": "COMPONENT=URL: fetch from a mirror (also EPBUILD_MIRROR_<COMPONENT>=URL)."})
@user_errors
def pins(c: Context, matrix: str = "matrix.yaml", check: bool = False, write: bool = False,
         mirror: list[str] | None = None) -> None:
    """Compare the pins, flags, vendor repositories and runtime environment with the reference build (vLLM's
    Dockerfiles at its pin); read-only unless --write."""
    from epbuild.cli import project
    from epbuild.inputs.source_requests import mirror_overrides
    from epbuild.pinning import follow_reference
    from epbuild.pinning.reference_diff import unexplained

    report = follow_reference.pins(project.load(matrix), project.ROOT, mirror_overrides(mirror or []), write=write)
    print(report.text())
    if check and unexplained(report.rows):
        print(f"error: {matrix}: differs from the reference where it explains nothing (write reference_differs "
              "on the key, or run `invoke pins --write`)", file=sys.stderr)
        raise Exit(code=1)


@task
def setup_docker(c: Context) -> None:
    """Install and start a Docker engine with buildx where missing (does nothing when one works)."""
    import shlex

    from epbuild.util.resources import resource

    c.run(f"bash {shlex.quote(str(resource('ci/setup-docker.sh')))}", pty=False)


@task(help={**MATRIX_HELP, "check": "Render in memory and fail, naming the files, if the CI pipelines differ."})
@user_errors
def ci(c: Context, matrix: str = "matrix.yaml", check: bool = False) -> None:
    """Render the CI pipelines (Buildkite ci/pipeline.yml, GitHub .github/workflows/epbuild.yml) from the matrix."""
    from epbuild.ci import pipelines
    from epbuild.cli import project

    files = pipelines.render(project.rendering(matrix), project.ROOT)
    if check:
        _fail_on_drift(f"the CI pipelines are out of date with {matrix}", "ci", matrix, pipelines.drift(files))
        print(f"CI pipelines: up to date ({len(files)} files)")
        return
    for path in pipelines.write(files):
        print(f"wrote {path}")


@task(iterable=["matrix"],
      help={"matrix": "A matrix whose builds' data is kept (repeatable; default: matrix.yaml). Name every matrix "
                      "you build from this checkout: what only the others need is removed.",
            "keep": "Keep the newest N leftovers of earlier pins of each kind (exports, wheelhouses, crates, ...).",
            "yes": "Remove them (default: only list what would go and the bytes it would free)."})
@user_errors
def gc(c: Context, matrix: list[str] | None = None, keep: int = 0, yes: bool = False) -> None:
    """List (and with --yes remove) what under build/ nothing current needs: layouts of dropped cells, unused
    blobs, exports/wheelhouses/crates/archives of old pins, mirrors of repositories no longer named."""
    from epbuild.build import garbage
    from epbuild.cli import project

    renderings = [project.rendering(path) for path in matrix or [project.DEFAULT_MATRIX]]
    print("\n".join(garbage.run(renderings, project.ROOT, keep=keep, delete=yes)))
