"""The pre-bake steps that prepare, each over a Scope (epbuild/build/source_trees.py): the cells, the components in
scope and the tree each is built from (a pin's export or a local tree). After the checks of that tree
(epbuild/build/prebake_checks.py), what each stage gets besides its source, prepared from that same tree: the
setuptools-scm version (`scm-<component>`), the git directory (`git-<component>`), source archives, the
build-requirement wheelhouse (`wheels-<component>`) and the vendored Rust crates (`crates-<component>`); and the NICs'
vendor packages.

Each step returns one line saying what it checked ("" where nothing was in scope), raises an EpbuildError naming
what failed, or NotChecked where it could not run at all. epbuild/build/prebake.py runs them, in one order, for
`invoke build` and `invoke bump` alike."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Spec

from epbuild.build.prebake_checks import NotChecked
from epbuild.build.source_trees import Scope
from epbuild.inputs import (
    archives,
    base_python,
    build_requires,
    cargo_vendor,
    git_head,
    preflight,
    scm_version,
    vendor_repo,
    wheelhouse,
)
from epbuild.inputs.base_python import BasePython
from epbuild.inputs.source_requests import requests_for
from epbuild.inputs.sources import SourceCache
from epbuild.model.component import Wheel
from epbuild.render.bakefile import runtime_pins
from epbuild.render.dockerfiles import RenderedCell
from epbuild.util import atomicfs
from epbuild.util.commands import query
from epbuild.util.paths import native_dir, runtime_wheelhouse_dir, wheelhouse_dir

log = logging.getLogger(__name__)


def versions(scope: Scope) -> str:
    """Computes and writes each scm-versioned component's version: a pin's from its history (once per pin; reused
    offline), a local tree's from its checkout (every build: its dirty marker carries the date)."""
    out: list[str] = []
    cache = SourceCache(scope.root, scope.runner)
    for rc, c in scope.components():
        if c.scm_distribution is None:
            continue
        tree = scope.tree(c.name)
        written = scope.root / scm_version.scm_dir(c.name, tree.ref) / scm_version.VERSION_FILE
        if scope.runner.dry_run:
            scope.runner.record(f"# {c.name}: setuptools-scm version of {tree.where} -> {written}")
            continue
        history: Path | None = None
        url: str | None = None
        if tree.local is not None:
            version = scm_version.local_version(tree.local.path, tree.local.head, tree.local.digest,
                                                fallback=c.scm_fallback, where=tree.where)
        elif written.is_file() and scm_version.history_record(scope.root, c.name, tree.ref).is_file():
            out.append(f"{c.name} {written.read_text().strip()}")
            continue
        else:
            # A version from before the build recorded its history is computed again, so the checks can read it.
            request = requests_for(scope.rendering.matrix, [c.name], scope.mirrors)[0]
            history, url = cache.history_with_tags(request), request.url
            version = scm_version.compute(history, tree.ref, fallback=c.scm_fallback, where=tree.where)
            log.info("%s: version %s (setuptools-scm rules, from the history)", tree.where, version)
        scm_version.write(scope.root, c.name, tree.ref, version, history=history, url=url)
        out.append(f"{c.name} {version}")
    return ", ".join(out)


def git_heads(scope: Scope) -> str:
    """Writes the git directory for each component whose setup.py asks git for HEAD: the pin's (from the fetched
    history), or the local checkout's."""
    out: list[str] = []
    cache = SourceCache(scope.root, scope.runner)
    for _, c in scope.components():
        if not c.git_head:
            continue
        tree = scope.tree(c.name)
        dest = scope.root / git_head.git_head_dir(c.name, tree.ref)
        if scope.runner.dry_run:
            scope.runner.record(f"# {c.name}: git directory of {tree.where} (HEAD, core.abbrev) -> {dest}")
            continue
        if tree.local is not None and tree.local.head is None:
            git_head.write(scope.root, c.name, tree.ref, None)
            out.append(f"{c.name}: no git checkout (no HEAD)")
            continue
        if not (dest / "HEAD").is_file():
            if tree.local is not None:
                full, short = git_head.checkout_revision(tree.local.path, where=tree.where)
            else:
                mirror = cache.history_with_tags(requests_for(scope.rendering.matrix, [c.name], scope.mirrors)[0])
                full, short = git_head.short_revision(mirror, tree.ref, where=tree.where)
            git_head.write(scope.root, c.name, tree.ref, full, short)
            log.info("%s: git rev-parse --short HEAD gives %s", tree.where, short)
        out.append(f"{c.name} {(dest / 'HEAD').read_text().strip()[:12]}")
    return ", ".join(out)


def source_archives(scope: Scope) -> str:
    """Fetches, checks and extracts each source archive a stage reads (once per sha256; reused offline)."""
    seen: set[str] = set()
    for rc, c in scope.pairs():
        for archive in c.archives(rc.plan.pins[c.name]):
            if archive.dest not in seen:
                seen.add(archive.dest)
                archives.ensure(archive, scope.root, scope.rendering.matrix.path.parent, scope.runner)
    return f"{len(seen)} archive(s)" if seen else ""


def _find_links(scope: Scope) -> list[str]:
    """The matrix's `python.find_links`, relative folders made absolute (they are relative to the matrix file)."""
    matrix = scope.rendering.matrix
    return [str((matrix.path.parent / link).resolve()) if link.startswith(("./", "../")) else link
            for link in matrix.model.python.find_links]


def _unmet_by_base(needed: list[wheelhouse.Requirement], base: BasePython) -> list[str]:
    """The build-system requirements the base does not satisfy, as 'origin: line (the base has ...)'."""
    provided = base.provided()
    out = []
    for requirement in needed:
        try:
            spec = Spec(requirement.line)
        except InvalidRequirement:
            out.append(f"{requirement.origin}: {requirement.line} (not a requirement pip can read)")
            continue
        dist = provided.get(wheelhouse.canonical(spec.name))
        if dist is None:
            out.append(f"{requirement.origin}: {requirement.line} (the base has no {spec.name})")
        elif not spec.specifier.contains(dist.version, prereleases=True):
            out.append(f"{requirement.origin}: {requirement.line} (the base has {dist.name} {dist.version})")
    return out


def runtime_refs(scope: Scope, rc: RenderedCell) -> dict[str, str]:
    """{component: the ref its tree is stored under} of the cell's components whose wheels install runtime
    requirements (the pin's commit, or a local tree's ref)."""
    return {name: scope.tree(name).ref for name in runtime_pins(rc.plan)}


def wheelhouses(scope: Scope) -> str:
    """Resolves, against each cell's base image (its own distributions, read from it: epbuild/inputs/base_python.py),
    each stage's build requirements (its requirement files plus its `[build-system] requires` and
    `setup_requires`, read from its tree) into its wheelhouse, and the final stage's runtime requirements into
    `runtime-wheels` (each cached per tree and base, pinned by hash). A Python stage with no wheelhouse whose build
    needs what the base lacks is refused: it would need an index in its RUN step. Those it cannot resolve for want
    of the base or the index are named in one NotChecked, after every other was resolved."""
    bases: dict[str, BasePython] = {}
    links = _find_links(scope)
    done: list[str] = []
    unchecked: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()

    def base_of(rc: RenderedCell, label: str) -> BasePython | None:
        image = rc.plan.base.image
        if image not in bases:
            if not scope.pull_bases and query(["docker", "image", "inspect", image]).returncode != 0:
                unchecked.append(f"{label}: it is resolved against the base's own distributions, and the engine "
                                 f"has no {image} (bases.{rc.plan.cell.base}.image; not pulled here: build once, "
                                 "or pull it)")
                return None
            try:
                bases[image] = base_python.read(image)
            except base_python.BasePythonError as exc:
                unchecked.append(f"{label}: it is resolved against the base's own distributions, and {exc}")
                return None
        return bases[image]

    def resolve(rc: RenderedCell, label: str, dest: str, where: str, lines: list[wheelhouse.Requirement]) -> None:
        base = base_of(rc, label)
        if base is None:
            return
        try:
            wheelhouse.ensure(scope.root, dest, where, lines, base, scope.runner, find_links=links)
        except wheelhouse.IndexUnreachable as exc:
            unchecked.append(f"{label}: {exc}")
            return
        done.append(label)

    for rc, c in scope.pairs():
        if not c.build_requirements and not isinstance(c.output, Wheel):
            continue
        tree = scope.tree(c.name)
        dest = wheelhouse_dir(c.name, tree.ref, rc.plan.cell.base)
        if dest in seen:
            continue
        seen.add(dest)
        if scope.runner.dry_run:
            if c.build_requirements:
                scope.runner.record(f"# {c.name}: resolve {' '.join(c.build_requirements)} and its build-system "
                                    f"requirements against {rc.plan.base.image}, pip download -> {dest}")
            continue
        label = f"{c.name} for {rc.plan.cell.base}"
        folder = scope.folder(rc, c)
        try:
            needed = build_requires.read(folder)
        except (build_requires.UnreadableBuildRequires, SyntaxError) as exc:
            problems.append(f"{tree.where}: {exc}")
            continue
        if not c.build_requirements:
            base = base_of(rc, label) if needed else None  # nothing to meet: no need to ask the base
            if base is not None:
                problems += [f"{tree.where}: its build needs {unmet}, and its stage has no wheelhouse (no index in "
                             "the RUN step)" for unmet in _unmet_by_base(needed, base)]
            continue
        lines = wheelhouse.requirements(folder, c.build_requirements, tree.where)
        lines += [r for r in needed if r.line not in {line.line for line in lines}]
        resolve(rc, label, dest, tree.where, lines)
    for rc in scope.cells:
        every = runtime_refs(scope, rc)  # the wheelhouse is one per cell: all of them go into it
        refs = {name: ref for name, ref in every.items() if scope.only is None or name in scope.only}
        if not refs:
            continue
        dest = runtime_wheelhouse_dir(every, rc.plan.cell.base)
        if dest in seen:
            continue
        seen.add(dest)
        if scope.runner.dry_run:
            scope.runner.record(f"# runtime requirements of {', '.join(refs)}: resolve against "
                                f"{rc.plan.base.image}, pip download -> {dest}")
            continue
        lines = []
        for name in every:
            c = rc.plan.registry[name]
            assert c.runtime_requirements is not None
            folder = scope.folder(rc, c)
            lines += wheelhouse.requirements(folder, c.runtime_requirements(folder), scope.tree(name).where)
        resolve(rc, f"the runtime requirements of {', '.join(refs)} for {rc.plan.cell.base}", dest,
                f"the runtime requirements of {', '.join(scope.tree(n).where for n in refs)}", lines)
    if problems:
        raise preflight.PreflightError(f"preflight: {scope.rendering.matrix.path}: a Python build needs what neither "
                                       "the base nor its wheelhouse has; nothing was built.\n  "
                                       + "\n  ".join(dict.fromkeys(problems)))
    if unchecked:
        raise NotChecked("; ".join(unchecked) + (f" (resolved: {', '.join(done)})" if done else ""))
    return ", ".join(done)


def native_inputs(scope: Scope) -> str:
    """Copies the paths each native step compiles from out of its tree into `native-<component>` (once per tree):
    the step then sees only them, so a pin move that touches nothing else keeps it cached."""
    done: list[str] = []
    for rc, c in scope.components():
        if c.native_inputs is None:
            continue
        tree = scope.tree(c.name)
        dest = scope.root / native_dir(c.name, tree.ref)
        done.append(c.name)
        if scope.runner.dry_run:
            scope.runner.record(f"# {c.name}: copy the paths its native step compiles from -> "
                                f"{native_dir(c.name, tree.ref)}")
            continue
        if dest.is_dir() and tree.local is None:
            continue  # a pin's tree never changes; a local tree is copied again on every build
        folder = scope.folder(rc, c)
        paths = c.native_inputs(folder)
        with atomicfs.filled_dir(dest, f".{dest.name}.") as tmp:
            for path in paths:
                origin, target = folder / path, tmp / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    shutil.copytree(origin, target, symlinks=True)
                else:
                    shutil.copy2(origin, target)
    return ", ".join(done)


def crates(scope: Scope) -> str:
    """Vendors the crates of each stage's Cargo workspace on the host (once per tree; verified on reuse)."""
    done: list[str] = []
    for rc, c in scope.pairs():
        pin = rc.plan.pins[c.name]
        workspace = c.cargo_workspace(pin)
        if workspace is None or c.name in done:
            continue
        done.append(c.name)
        tree = scope.tree(c.name)
        if scope.runner.dry_run:
            scope.runner.record(f"# {c.name}: cargo vendor --locked {workspace}/Cargo.lock -> "
                                f"{cargo_vendor.crates_dir(c.name, tree.ref)}")
            continue
        cargo_vendor.ensure(scope.root, c.name, tree.ref, scope.folder(rc, c) / workspace, scope.runner)
    return ", ".join(done)


def vendors(scope: Scope) -> str:
    """Each NIC's vendor packages a stage in scope builds on, verified (epbuild/inputs/vendor_repo.py): a build's every
    cell whose NIC has vendor userspace; a bumped component's cells where its stage builds against it."""
    requests: dict[str, vendor_repo.VendorRequest] = {}
    for rc in scope.cells:
        vendor = rc.plan.vendor
        if vendor is None:
            continue
        if scope.only is None or any(rc.plan.vendor_build(name) is not None for name in scope.only
                                     if name in rc.plan.pins):
            requests[rc.cell.nic] = vendor_repo.VendorRequest(rc.cell.nic, vendor)
    try:
        fetched = vendor_repo.fetch_all(scope.root, scope.runner, list(requests.values()))
    except vendor_repo.VendorUnreachable as exc:
        raise NotChecked(str(exc)) from None
    return ", ".join(f"nics.{v.nic}.vendor" for v in fetched)
