"""What each stage gets besides its source, prepared on the host after the fetch and before bake: preflight of
every flag and variable against the source at its pin, the setuptools-scm version (`scm-<component>`) and the
build-requirement wheelhouse (`wheels-<component>`)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from epbuild import preflight, scm_version, wheelhouse
from epbuild.bakefile import source_dir
from epbuild.commands import Runner
from epbuild.render import RenderedCell, Rendering
from epbuild.sources import SourceCache, SourceRequest, requests_for
from epbuild.stages import Stage, stages_for

log = logging.getLogger(__name__)


def source_folder(root: Path, rc: RenderedCell, stage: Stage) -> Path:
    """The folder of the component inside its exported tree (rocSHMEM lives under its `path`)."""
    assert stage.source is not None
    pin = rc.plan.pins[stage.source]
    return root / source_dir(stage.source, pin.commit) / getattr(pin, "path", "")


def check(rendering: Rendering, cells: list[RenderedCell], root: Path) -> None:
    """Preflight over every stage of every selected cell; raises PreflightError naming each mismatch."""
    checks = []
    for rc in cells:
        for stage in stages_for(rc.plan):
            if stage.interface is None or stage.source is None:
                continue
            pin = rc.plan.pins[stage.source]
            interface = stage.interface(rc.plan)
            files = [preflight.Use("file", name, f"the {stage.name} stage's build requirements")
                     for name in stage.build_requirements]
            interface = replace(interface, uses=[*interface.uses, *files])
            checks.append((stage.source, pin.commit, source_folder(root, rc, stage), interface))
    preflight.run(checks, rendering.matrix.path)


def versions(rendering: Rendering, cells: list[RenderedCell], root: Path, cache: SourceCache,
             mirrors: dict[str, str]) -> dict[str, str]:
    """Computes and writes each scm-versioned component's version (once per pin; reused offline)."""
    out: dict[str, str] = {}
    for rc in cells:
        for stage in stages_for(rc.plan):
            if stage.scm_distribution is None or stage.source is None or stage.source in out:
                continue
            pin = rc.plan.pins[stage.source]
            written = root / scm_version.scm_dir(stage.source, pin.commit) / scm_version.VERSION_FILE
            if cache.runner.dry_run:
                cache.runner.record(f"# {stage.source}: setuptools-scm version of {pin.commit} -> {written}")
                continue
            if written.is_file():
                out[stage.source] = written.read_text().strip()
                continue
            request: SourceRequest = requests_for(rendering.matrix, [stage.source], mirrors)[0]
            mirror = cache.history_with_tags(request)
            version = scm_version.compute(mirror, pin.commit, fallback=stage.scm_fallback,
                                          where=f"{stage.source} at {pin.commit[:12]}")
            scm_version.write(root, stage.source, pin.commit, version)
            log.info("%s: version %s (setuptools-scm rules, from the history at %s)", stage.source, version,
                     pin.commit[:12])
            out[stage.source] = version
    return out


def wheelhouses(cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Resolves each stage's build requirements into its wheelhouse (cached per pin, pinned by hash)."""
    done: set[str] = set()
    target: wheelhouse.PythonTarget | None = None
    for rc in cells:
        for stage in stages_for(rc.plan):
            if not stage.build_requirements or stage.source is None or stage.source in done:
                continue
            done.add(stage.source)
            pin = rc.plan.pins[stage.source]
            if runner.dry_run:
                runner.record(f"# {stage.source}: pip download {' '.join(stage.build_requirements)} -> "
                              f"{wheelhouse.wheelhouse_dir(stage.source, pin.commit)}")
                continue
            where = f"{stage.source} at {pin.commit[:12]}"
            lines = wheelhouse.requirements(source_folder(root, rc, stage), stage.build_requirements, where)
            if target is None:
                target = wheelhouse.image_python(rc.plan.matrix.base.image)
            wheelhouse.ensure(root, stage.source, pin.commit, lines, target, runner)

