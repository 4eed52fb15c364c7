"""What a build needs before any stage runs, fetched and checked: the matrix's local preparation, the pinned
sources (with each pin's `requires`), the stage inputs (preflight's second pass, versions, git heads, archives,
wheels), the NICs' vendor packages, and the exact inputs resolved (base digests, full commits, local trees)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from epbuild import local_source, nic_support, preflight, requirements, stageinputs, vendor_repo
from epbuild.commands import Runner
from epbuild.render import RenderedCell, Rendering
from epbuild.resolve import FULL_COMMIT, Resolved, base_digest
from epbuild.source_requests import ExportedSource, mirror_overrides, requests_for
from epbuild.sources import SourceCache, fetch_all
from epbuild.stagegraph import built_pins


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


def fetch_abbreviated(rendering: Rendering, cells: list[RenderedCell], root: Path, runner: Runner) -> None:
    """Fetches the cells' sources when a pin abbreviates its commit: the content key needs the full one."""
    if any(len(pin.commit) < FULL_COMMIT for rc in cells for pin in built_pins(rc.plan).values()):
        fetch_sources(rendering, cells, root, [], runner)


def prepare_stage_inputs(rendering: Rendering, cells: list[RenderedCell], root: Path, mirrors: Sequence[str],
                         runner: Runner) -> None:
    """Preflight's second pass first (a mismatch fails in seconds, before any download or build), then versions
    and wheels."""
    if runner.dry_run:
        runner.record("# preflight: every flag, variable and file each stage passes, against its source at the pin")
    else:
        stageinputs.check(rendering, cells, root)
        stageinputs.rust_toolchains(rendering, cells, root)
    overrides = mirror_overrides(list(mirrors))
    stageinputs.versions(rendering, cells, root, SourceCache(root, runner), overrides)
    stageinputs.git_heads(rendering, cells, root, SourceCache(root, runner), overrides)
    stageinputs.source_archives(rendering, cells, root, runner)
    stageinputs.wheelhouses(rendering, cells, root, runner)
    stageinputs.native_inputs(cells, root, runner)
    stageinputs.crates(cells, root, runner)


def check_sources(rendering: Rendering, exported: list[ExportedSource], runner: Runner,
                  cells: list[RenderedCell] | None = None) -> None:
    """Each component's checks of its exported source (its spec's `source_check`, e.g. MoRI's NIC flags): what
    the matrix says about a pin that only the source itself can confirm, before any stage runs; then whether each
    cell's NIC is one its components can drive at their pins (epbuild.nic_support)."""
    if runner.dry_run:
        return
    model = rendering.matrix.model
    pins = model.components.pins()
    found = [f"{source.component}: {problem}" for source in exported
             for problem in model.registry[source.component].source_check(pins[source.component], source.path)]
    found += nic_support.problems((rc.plan for rc in (cells if cells is not None else rendering.cells)),
                                  {source.component: source.path for source in exported})
    if found:
        raise preflight.PreflightError("the pinned sources disagree with the matrix; nothing was built:\n  "
                                       + "\n  ".join(found))


def fetch_vendor(rendering: Rendering, cells: list[RenderedCell], root: Path,
                 runner: Runner) -> list[vendor_repo.FetchedVendor]:
    """Each selected NIC's vendor packages, verified before any stage runs (epbuild/vendor_repo.py)."""
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
