"""`invoke test`: runs the in-image checks (epbuild/checks/image, testinfra) against a cell's image, or the GPU tier
(epbuild/checks/gpu), writing a JUnit report per cell under build/reports/ and summarising what failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from epbuild.build.buildreport import recorded_image
from epbuild.checks import expectations
from epbuild.inputs.resolve import Resolved
from epbuild.render.content_key import checkout_inputs, content_key
from epbuild.render.dockerfiles import RenderedCell, Rendering
from epbuild.util import timeouts
from epbuild.util.commands import query
from epbuild.util.errors import EpbuildError

CHECKS = Path(__file__).resolve().parent
"""The in-image checks (image/: the static tier, testinfra; gpu/: the GPU tier), shipped in the package."""


@dataclass
class CheckRun:
    cell: str
    image: str
    report: Path
    note: str = ""
    """Which image was checked when the caller named none, and why."""
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    not_run: str = ""
    checks_not_run: list[str] = field(default_factory=list)
    """Checks that did not run on this host, with the reason (e.g. the GPU tier's NIC test without that NIC)."""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run.startswith("error")


STOP_GRACE = 60.0
"""Seconds an interrupted check run gets to remove its container before it is killed."""

GPU_DRY_RUN_ENV = "EPBUILD_GPU_DRY_RUN"
"""Tells the GPU tier (epbuild/checks/gpu/conftest.py) to print each case instead of running it."""

SYSFS_ENV = "EPBUILD_SYSFS_ROOT"
"""Where to read sysfs from (default /sys); tests point it at a tree they write."""


def amd_gpus() -> list[str]:
    """gfx targets of the AMD GPUs the KFD driver exposes (empty without /dev/kfd or a GPU node)."""
    from epbuild.checks.detect import kfd_gfx_targets

    sysfs = Path(os.environ.get(SYSFS_ENV, "/sys"))
    return kfd_gfx_targets(sysfs) if Path("/dev/kfd").exists() or SYSFS_ENV in os.environ else []


def require_archs(archs: list[str], cells: list[RenderedCell]) -> None:
    """Refuses a host whose GPUs lack one of `archs` (CI passes the archs of the pool a GPU step was meant for, so
    an override that sends it to another arch's agents fails here, naming both), or an arch no selected cell has."""
    foreign = sorted({a for a in archs if not any(a in rc.cell.archs for rc in cells)})
    if foreign:
        raise EpbuildError(f"--gpu-arch {foreign[0]}: the selected cells carry device code for "
                           f"{', '.join(sorted({a for rc in cells for a in rc.cell.archs}))} only")
    host = sorted(set(amd_gpus()))
    missing = [a for a in archs if a not in host]
    if missing:
        raise EpbuildError(f"this agent's GPUs are {', '.join(host) or 'none'}, but the step is for "
                           f"{', '.join(missing)}: its pool (or a pool override variable, EPBUILD_POOL_<POOL>) names "
                           "agents of another arch")


def image_exists(image: str) -> bool:
    return query(["docker", "image", "inspect", image]).returncode == 0


def image_id(ref: str) -> str | None:
    proc = query(["docker", "image", "inspect", "--format", "{{.Id}}", ref])
    return proc.stdout.strip() if proc.returncode == 0 else None


def built_image(rc: RenderedCell, root: Path, key: str) -> tuple[str, str]:
    """The image to check for a cell when none is named, and a note saying which it is: the one this checkout's
    newest build of these inputs made (by ID), since the local tag is shared and another checkout's build of
    the same cell may have moved it; the tag itself when no build is recorded (a pulled image)."""
    tag = rc.plan.local_tag
    recorded = recorded_image(root, tag, key)
    if recorded is None:
        return tag, f"no build of {rc.cell.name} at key {key[:12]} recorded under {root / 'build' / 'logs'}: checking {tag}"
    built, run_dir = recorded
    now = image_id(tag)
    if now == built:
        return built, ""
    if not image_exists(built):
        raise EpbuildError(f"the image this checkout built for {rc.cell.name} ({built}, run {run_dir}) is no longer "
                           f"in the engine, and {tag} names {now or 'nothing'} now: build the cell again")
    return built, (f"{tag} has moved since this checkout built {rc.cell.name} (it names {now or 'nothing'} now): "
                   f"checking the image built in {run_dir}, {built}")


def check_cells(rendering: Rendering, cells: list[RenderedCell], image: str | None, root: Path, *,
                gpu: bool = False, quiet: bool = False, dry_run: bool = False) -> list[CheckRun]:
    """run_checks for each cell, with this checkout's exact inputs; `image` (one cell only) checks that image."""
    if image and len(cells) != 1:
        raise EpbuildError(f"--image checks one cell, but the selection has {len(cells)}: "
                           + ", ".join(rc.cell.name for rc in cells))
    resolved = checkout_inputs(rendering, cells, root)
    return [run_checks(rc, image, root, rendering.matrix.directory, resolved, gpu=gpu, quiet=quiet, dry_run=dry_run)
            for rc in cells]


def run_checks(rc: RenderedCell, image: str | None, root: Path, matrix_dir: Path, resolved: Resolved, *,
               gpu: bool = False, quiet: bool = False, dry_run: bool = False) -> CheckRun:
    """Checks `image` as the cell; with no image, the one this checkout built for it (built_image).
    `resolved`: this checkout's exact inputs, which give the cell's content key. `dry_run` (GPU tier only): each
    case prints its command and what it asserts and is reported not run; no image or GPU is needed."""
    if dry_run and not gpu:
        raise EpbuildError("--dry-run applies to the GPU tier only (invoke test --gpu --dry-run)")
    note = ""
    if image is None:
        image, note = built_image(rc, root, content_key(rc, resolved))
    kind = "gpu" if gpu else "static"
    report = root / "build" / "reports" / f"{rc.cell.name}-{kind}.xml"
    run = CheckRun(rc.cell.name, image, report, note)
    if not dry_run and not image_exists(image):
        raise EpbuildError(f"image {image} for cell {rc.cell.name} is not in the local engine: build it "
                           f"(invoke build --arch {rc.cell.arch} --nic {rc.cell.nic}) or pull it (invoke pull ...)")
    if gpu and not dry_run:
        host = amd_gpus()
        if not host:
            run.not_run = "not run: no AMD GPU (no /dev/kfd with a GPU node on this host)"
            return run
        if not set(host) & set(rc.cell.archs):
            # A gfx950-only image cannot run on MI325X (gfx942): a pool moved to other hardware tests nothing.
            run.not_run = (f"not run: this host's GPUs are {', '.join(sorted(set(host)))}, and {rc.cell.name} "
                           f"carries device code for {', '.join(rc.cell.archs)} only")
            return run
    expect = expectations.write(expectations.expectation(rc, image, root, matrix_dir, resolved),
                                root / "build" / "reports" / f"{rc.cell.name}.expected.json")
    if gpu:
        paths, plugin = [CHECKS / "gpu"], ["-s", "-rs"] if dry_run else []
    else:
        # Each component's checks sit in its folder; the plugin deselects those of components the cell lacks.
        # testinfra is used as a library: its own plugin (registered as "testinfra" or, by newer releases,
        # "pytest11.testinfra") would replace the plugin's `host` fixture with a local one.
        checks = [path for c in rc.plan.registry.components for path in c.checks()]
        paths, plugin = [CHECKS / "image", *checks], ["-p", "imagecheck", "-p", "no:testinfra",
                                                      "-p", "no:pytest11.testinfra"]
    argv = [sys.executable, "-m", "pytest", *map(str, paths), *plugin, "-p", "no:cacheprovider",
            f"--junitxml={report}", "-o", "junit_family=xunit2", "--rootdir", str(CHECKS.parents[1]),
            "-q" if quiet else "-v"]
    # epbuild/checks/image holds the plugin and the helpers the component checks import.
    pythonpath = os.pathsep.join(filter(None, [str(CHECKS / "image"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, expectations.EXPECTED_ENV: str(expect), "PYTHONPATH": pythonpath}
    if dry_run:
        env[GPU_DRY_RUN_ENV] = "1"
    limit = timeouts.IMAGE_TESTS
    code = _run_with_deadline(argv, root, env, limit.seconds())
    if code is None:
        run.not_run = (f"error: the checks did not finish within {limit.seconds():g} s and were stopped (raise "
                       f"the limit with {limit.env})")
        return run
    _read_report(run, code)
    return run


def _run_with_deadline(argv: list[str], cwd: Path, env: dict[str, str], seconds: float) -> int | None:
    """pytest's exit code, or None when it ran past `seconds`. It is interrupted like Ctrl-C first, so its
    fixtures remove the container they started, and killed if that hangs too. (It stays in our process group,
    so a Ctrl-C at the terminal still reaches it.)"""
    proc = subprocess.Popen(argv, cwd=cwd, env=env)
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return None


def _read_report(run: CheckRun, code: int) -> None:
    if not run.report.exists():
        run.not_run = f"error: pytest exited {code} without a report"
        return
    for case in ET.parse(run.report).getroot().iter("testcase"):
        name = f"{Path(case.get('file') or case.get('classname', '').replace('.', '/')).stem}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            run.failed.append(name)
        elif (skipped := case.find("skipped")) is not None:
            run.skipped += 1
            reason = skipped.get("message", "")
            if "not run:" in reason:
                run.checks_not_run.append(f"{name}: {reason[reason.index('not run:'):]}")
        else:
            run.passed += 1
    if code not in (0, 1) and not run.failed:
        run.not_run = f"error: pytest exited {code} (see {run.report})"


def summary(runs: list[CheckRun]) -> str:
    lines = []
    for run in runs:
        if run.not_run:
            lines.append(f"{run.cell}: {run.not_run}")
            continue
        status = "ok" if run.ok else "FAILED"
        lines.append(f"{run.cell}: {status}: {run.passed} passed, {len(run.failed)} failed, {run.skipped} skipped "
                     f"({run.image}); report {run.report}")
        lines += [f"  failed: {name}" for name in run.failed]
        lines += [f"  {line}" for line in run.checks_not_run]
        if run.note:
            lines.append(f"  note: {run.note}")
    return "\n".join(lines)
