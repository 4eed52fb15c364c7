"""What a build needs before any stage runs: the matrix's local preparation, the trees it builds (local trees
exported first, then the other pins fetched, with each pin's `requires`), the pre-bake steps over them
(epbuild/build/prebake.py), and the exact inputs resolved (base digests, full commits, local trees)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from epbuild.build import prebake as prebake_steps
from epbuild.build.source_trees import Scope, Trees
from epbuild.inputs import local_source, requirements, vendor_repo
from epbuild.inputs.resolve import FULL_COMMIT, Resolved, base_digest
from epbuild.inputs.source_requests import ExportedSource, mirror_overrides, requests_for
from epbuild.inputs.sources import SourceCache, fetch_all
from epbuild.model.stagegraph import built_pins
from epbuild.render.dockerfiles import RenderedCell, Rendering
from epbuild.util.commands import Runner


def resolve_inputs(cells: list[RenderedCell], exported: list[ExportedSource],
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
def prepared(rendering: Rendering, cells: list[RenderedCell], runner: Runner, *,
             base_images: bool = True) -> Iterator[None]:
    """Makes what a matrix says it prepares locally (the offline example's base images, only those the cells
    start from and only with `base_images`, its stand-in repos and vendor apt repository), and keeps what must
    run while inputs are fetched (the example's repository server)."""
    if rendering.matrix.model.prepare == "offline-example":
        from epbuild import offline

        with offline.prepared(rendering.matrix, [rc.plan for rc in cells], runner, base_images=base_images):
            yield
    else:
        yield


def fetch_sources(rendering: Rendering, cells: list[RenderedCell], root: Path, mirrors: Sequence[str],
                  runner: Runner, skip: set[str] | None = None) -> list[ExportedSource]:
    """Fetches and exports the cells' pinned sources, but for the components in `skip` (built from local trees),
    and checks each pin's `requires` against its history. `mirrors`: --mirror's COMPONENT=URL items."""
    wanted = [name for name in dict.fromkeys(name for rc in cells for name in built_pins(rc.plan))
              if name not in (skip or set())]
    overrides = mirror_overrides(list(mirrors))
    requests = requests_for(rendering.matrix, wanted, overrides)
    cache = SourceCache(root, runner)
    exported = fetch_all(cache, requests)
    if not runner.dry_run:
        for request, source in zip(requests, exported):
            if not request.pin.requires:
                continue
            mirror = cache.mirror_for(request.url)
            if not (mirror / "HEAD").exists():  # a cached export whose mirror was removed: fetch the history again
                mirror = cache.fetch_refs(request, [source.commit])
            requirements.check(request.component, mirror, request.pin, source.commit)
    return exported


def export_trees(rendering: Rendering, cells: list[RenderedCell], root: Path, mirrors: Sequence[str],
                 local_sources: Sequence[str], runner: Runner) -> Trees:
    """The trees a build builds: each local tree (`--source COMPONENT=PATH`) exported first, then the pins of the
    other components fetched and exported; a component given a local tree is neither fetched nor read at its pin."""
    given = local_source.parse(list(local_sources), list(rendering.matrix.model.components.pins()))
    local = {name: local_source.export(name, path, root, copy=not runner.dry_run) for name, path in given.items()}
    for tree in local.values():
        if runner.dry_run:
            print(f"# {tree.component}: the local tree {tree.path} ({tree.digest}) is exported to {tree.export}; "
                  "its pin is not fetched", file=runner.out)
    return Trees(fetch_sources(rendering, cells, root, mirrors, runner, skip=set(local)), local)


def prebake(rendering: Rendering, cells: list[RenderedCell], root: Path, mirrors: dict[str, str], runner: Runner,
            trees: Trees, only: frozenset[str] | None = None, pull_bases: bool = True) -> prebake_steps.Report:
    """Every pre-bake step (epbuild/build/prebake.py) over the cells (`only`: for these components), on `trees`.
    `mirrors`: the per-component URL overrides (mirror_overrides); `pull_bases`: see Scope."""
    return prebake_steps.run(Scope(rendering, cells, root, runner, mirrors, trees.by_component(root, cells), only,
                                   pull_bases))


def fetch_abbreviated(rendering: Rendering, cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Fetches the cells' sources when a pin abbreviates its commit: the content key needs the full one."""
    if any(len(pin.commit) < FULL_COMMIT for rc in cells for pin in built_pins(rc.plan).values()):
        fetch_sources(rendering, cells, root, [], runner)


def fetch_vendor(rendering: Rendering, cells: list[RenderedCell], root: Path,
                 runner: Runner) -> list[vendor_repo.FetchedVendor]:
    """Each selected NIC's vendor packages, verified before any stage runs (epbuild/inputs/vendor_repo.py)."""
    requests = {rc.cell.nic: vendor_repo.VendorRequest(rc.cell.nic, rc.plan.vendor)
                for rc in cells if rc.plan.vendor is not None}
    return vendor_repo.fetch_all(root, runner, list(requests.values()))


def fetch_inputs(rendering: Rendering, cells: list[RenderedCell], root: Path, mirrors: Sequence[str],
                 runner: Runner) -> list[str]:
    """`invoke sources`: the cells' sources and their NICs' vendor packages, fetched and verified (the matrix's
    local preparation first); one line per source and vendor download."""
    with prepared(rendering, cells, runner):
        exported = fetch_sources(rendering, cells, root, mirrors, runner)
        vendors = fetch_vendor(rendering, cells, root, runner)
    return ([f"{s.component:<10} {s.commit}  {s.path}" + ("  (cached)" if s.cached else "") for s in exported]
            + [f"{'vendor':<10} {v.nic:<40} {v.path}" + ("  (cached)" if v.cached else "") for v in vendors])
