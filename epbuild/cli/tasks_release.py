"""The tasks that publish, pull and move pins: `invoke publish`, `pull`, `bump` and `pins`."""

from __future__ import annotations

import sys

from invoke import Context, Exit

from epbuild.cli.taskflags import (
    CELL_HELP,
    MATRIX_HELP,
    logging_setup,
    run_dir_runner,
    selected_cells,
    task,
    user_errors,
)
from epbuild.util.errors import EpbuildError


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
    r, cells = selected_cells(matrix, arch, nic, all, cell, base)
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
    runner = run_dir_runner("publish")
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
    r, cells = selected_cells(matrix, arch, nic, all, cell, base)
    if digest is not None:
        from epbuild.release.publish import cell_registry_login

        if len(cells) != 1 or build or detect:
            raise EpbuildError("--digest pulls one cell's image: select exactly one cell, without --build or --detect")
        runner = Runner(dry_run=dry_run) if dry_run else run_dir_runner("pull")
        with cell_registry_login(cells[0], registry, runner):
            print(f"{cells[0].cell.name}: pulled {puller.pull_digest(cells[0], digest, runner, registry)}")
        return
    if dry_run:
        from epbuild.release.dryrun import pull_plan

        print("\n".join(pull_plan(r, cells, project.ROOT, registry, build)))
        return
    missing = puller.pull_cells(r, cells, project.ROOT, run_dir_runner("pull"), registry, keep_missing=build)
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
