"""What each stage gets besides its source, prepared on the host after the fetch and before bake: preflight of
every flag and variable against the source at its pin (and of the base's Rust toolchain against the pin's), the
setuptools-scm version (`scm-<component>`), the build-requirement wheelhouse (`wheels-<component>`) and the
vendored Rust crates (`crates-<component>`)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from epbuild import archives, cargo_vendor, git_head, preflight, rust_toolchain, scm_version, wheelhouse
from epbuild.bakefile import source_dir
from epbuild.commands import Runner
from epbuild.component import CellFacts, Component, StageInput
from epbuild.interface import Use
from epbuild.render import RenderedCell, Rendering
from epbuild.source_requests import SourceRequest, requests_for
from epbuild.sources import SourceCache
from epbuild.stagegraph import built_pins

log = logging.getLogger(__name__)


def built_components(rc: RenderedCell) -> list[Component]:
    return [rc.plan.registry[name] for name in built_pins(rc.plan)]


def source_folder(root: Path, rc: RenderedCell, component: Component) -> Path:
    """The folder of the component inside its exported tree (rocSHMEM lives under its sparse `path`)."""
    pin = rc.plan.pins[component.name]
    return root / source_dir(component.name, pin.commit) / "".join(component.sparse_paths(pin))


def check(rendering: Rendering, cells: list[RenderedCell], root: Path) -> None:
    """Preflight's second pass over every component of every selected cell; raises PreflightError naming each
    mismatch between what its stage passes and what its source at the pin accepts."""
    checks = []
    for rc in cells:
        for c in built_components(rc):
            if c.interface is None:
                continue
            pin = rc.plan.pins[c.name]
            facts = CellFacts(rc.plan.facts_for(c.name), c.uses, c.name)
            interface = c.interface(StageInput(pin, rc.plan.pins, facts))
            files = [Use("file", name, f"the {c.name} stage's build requirements") for name in c.build_requirements]
            interface = replace(interface, uses=[*interface.uses, *files])
            checks.append((c.name, pin.commit, source_folder(root, rc, c), interface))
    preflight.check_sources(checks, rendering.matrix.path)


def versions(rendering: Rendering, cells: list[RenderedCell], root: Path, cache: SourceCache,
             mirrors: dict[str, str]) -> dict[str, str]:
    """Computes and writes each scm-versioned component's version (once per pin; reused offline)."""
    out: dict[str, str] = {}
    for rc in cells:
        for c in built_components(rc):
            if c.scm_distribution is None or c.name in out:
                continue
            pin = rc.plan.pins[c.name]
            written = root / scm_version.scm_dir(c.name, pin.commit) / scm_version.VERSION_FILE
            if cache.runner.dry_run:
                cache.runner.record(f"# {c.name}: setuptools-scm version of {pin.commit} -> {written}")
                continue
            # A version from before the build recorded its history is computed again, so the checks can read it.
            if written.is_file() and scm_version.history_record(root, c.name, pin.commit).is_file():
                out[c.name] = written.read_text().strip()
                continue
            request: SourceRequest = requests_for(rendering.matrix, [c.name], mirrors)[0]
            mirror = cache.history_with_tags(request)
            version = scm_version.compute(mirror, pin.commit, fallback=c.scm_fallback,
                                          where=f"{c.name} at {pin.commit[:12]}")
            scm_version.write(root, c.name, pin.commit, version, history=mirror, url=request.url)
            log.info("%s: version %s (setuptools-scm rules, from the history at %s)", c.name, version,
                     pin.commit[:12])
            out[c.name] = version
    return out


def git_heads(rendering: Rendering, cells: list[RenderedCell], root: Path, cache: SourceCache,
              mirrors: dict[str, str]) -> None:
    """Writes the pin's git directory for each component whose setup.py asks git for HEAD (once per pin)."""
    for rc in cells:
        for c in built_components(rc):
            if not c.git_head:
                continue
            pin = rc.plan.pins[c.name]
            dest = root / git_head.git_head_dir(c.name, pin.commit)
            if cache.runner.dry_run:
                cache.runner.record(f"# {c.name}: git directory of {pin.commit} (HEAD, core.abbrev) -> {dest}")
                continue
            if (dest / "HEAD").is_file():
                continue
            request: SourceRequest = requests_for(rendering.matrix, [c.name], mirrors)[0]
            where = f"{c.name} at {pin.commit[:12]}"
            full, short = git_head.short_revision(cache.history_with_tags(request), pin.commit, where=where)
            git_head.write(root, c.name, pin.commit, full, short)
            log.info("%s: git rev-parse --short HEAD gives %s at the pin", c.name, short)


def wheelhouses(cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Resolves each stage's build requirements into its wheelhouse (cached per pin, pinned by hash)."""
    targets: dict[str, wheelhouse.PythonTarget] = {}
    for rc in cells:
        for c in built_components(rc):
            if not c.build_requirements:
                continue
            pin = rc.plan.pins[c.name]
            if runner.dry_run:
                runner.record(f"# {c.name}: pip download {' '.join(c.build_requirements)} -> "
                              f"{wheelhouse.wheelhouse_dir(c.name, pin.commit, rc.plan.cell.base)}")
                continue
            where = f"{c.name} at {pin.commit[:12]}"
            lines = wheelhouse.requirements(source_folder(root, rc, c), c.build_requirements, where)
            image = rc.plan.base.image
            if image not in targets:
                targets[image] = wheelhouse.image_python(image)
            wheelhouse.ensure(root, c.name, pin.commit, rc.plan.cell.base, lines, targets[image], runner)



def source_archives(rendering: Rendering, cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Fetches, checks and extracts each source archive a stage reads (once per sha256; reused offline)."""
    seen: set[str] = set()
    for rc in cells:
        for c in built_components(rc):
            for archive in c.archives(rc.plan.pins[c.name]):
                if archive.dest not in seen:
                    seen.add(archive.dest)
                    archives.ensure(archive, root, rendering.matrix.path.parent, runner)


def rust_toolchains(rendering: Rendering, cells: list[RenderedCell], root: Path) -> None:
    """Preflight of every stage that compiles Rust: the base's rustc (bases.<name>.rustc_version) must satisfy the
    pin's rust-toolchain.toml; raises PreflightError naming component, pin and keys."""
    found: list[str] = []
    for rc in cells:
        for c in built_components(rc):
            pin = rc.plan.pins[c.name]
            if c.cargo_workspace(pin) is None:
                continue
            asked = rust_toolchain.channel(source_folder(root, rc, c))
            if asked is None:
                continue
            why = rust_toolchain.problem(asked[0], rc.plan.base.rustc_version)
            if why is not None:
                found.append(f"{c.name} at {pin.commit[:12]}: {asked[1]}: {why} (bases.{rc.plan.cell.base}."
                             f"rustc_version; the Rust step is components.{c.field_name}.rust_frontend)")
    if found:
        raise preflight.PreflightError(f"preflight: {rendering.matrix.path}: the bases cannot compile the pinned Rust; "
                                       "nothing was built.\n  " + "\n  ".join(dict.fromkeys(found)))


def crates(cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Vendors the crates of each stage's Cargo workspace on the host (once per pin; verified on reuse)."""
    done: set[tuple[str, str]] = set()
    for rc in cells:
        for c in built_components(rc):
            pin = rc.plan.pins[c.name]
            workspace = c.cargo_workspace(pin)
            if workspace is None or (c.name, pin.commit) in done:
                continue
            done.add((c.name, pin.commit))
            if runner.dry_run:
                runner.record(f"# {c.name}: cargo vendor --locked {workspace}/Cargo.lock -> "
                              f"{cargo_vendor.crates_dir(c.name, pin.commit)}")
                continue
            cargo_vendor.ensure(root, c.name, pin.commit, source_folder(root, rc, c) / workspace, runner)
