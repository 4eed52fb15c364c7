"""The registry stage cache behind `invoke build --cache REGISTRY/REPO`: every distinct stage gets its own BuildKit
cache ref, `REPO:<stage>-<identity>`, named by the stage identity the stage graph computes (its text, its parents'
identities, its sources' pins). A build imports the refs of every stage its cells contain and exports each stage
it builds to that stage's own ref, so a ref is only ever written by the one stage it names, and a moved pin
gives new refs to exactly the stages that changed.

Bake applies cache-from/cache-to per target, not per stage, so each cached stage becomes a target of its own
(`target: <stage>` in the first selected cell that contains it, output `cacheonly`); BuildKit solves it in the
same session as the cells, so the work is still done once. This module writes those targets as a bake file laid
over the rendered one (`--file images/docker-bake.json --file <overlay>`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from epbuild.model import stagegraph
from epbuild.model.patterns import REGISTRY
from epbuild.model.stagegraph import stage_identities
from epbuild.render.bakefile import cell_target
from epbuild.render.dockerfiles import RenderedCell
from epbuild.util.errors import EpbuildError

ID_CHARS = 24
"""Identity characters in a ref's tag: plenty against collisions, short enough to read in a registry listing."""
LAYERS = re.compile(r"^(RUN|COPY|ADD) ", re.M)
Export = Literal["all", "own", "none"]
"""Which stages a build exports: every stage it builds; only those no other cell of the matrix shares (CI's cell
steps: the shared stages have steps of their own, which are the only writers of their refs); or none (a reader
without push rights: a laptop importing what CI built)."""


class CacheError(EpbuildError):
    pass


def checked_repo(value: str) -> str:
    """--cache takes REGISTRY/REPO: refs are tags in that one repository."""
    if "/" not in value or not REGISTRY.fullmatch(value):
        raise CacheError(f"--cache {value!r} is not a cache repository: expected REGISTRY/REPO, e.g. "
                         "registry.example.com/epbuild/cache or 127.0.0.1:5000/cache"
                         + (" (is the variable that should name it unset?)" if not value else ""))
    return value


def ref(repo: str, stage: str, identity: str) -> str:
    return f"{repo}:{stage}-{identity[:ID_CHARS]}"


@dataclass(frozen=True)
class CachedStage:
    """One distinct stage: where to build it from and which stages it builds on."""

    name: str
    identity: str
    cell: RenderedCell
    """The first selected cell that contains the stage: its Dockerfile and sources build it."""
    ancestors: tuple[tuple[str, str], ...]
    """(name, identity) of every cached stage it builds on, nearest first."""

    @property
    def target(self) -> str:
        return f"stage-{self.name}-{self.identity[:12]}"


def makes_layers(text: str) -> bool:
    """A stage worth a ref: one that adds layers (a stage of ENV lines only has nothing to cache)."""
    return bool(LAYERS.search(text))


def stage_parents(rc: RenderedCell) -> dict[str, list[str]]:
    """Each stage's parent stages in `rc`: the stage it builds FROM and every stage it mounts or copies from."""
    plan = rc.plan
    return {stage.name: [name for name in [stagegraph.parent(stage, plan), *stagegraph.inputs(stage, plan)] if name]
            for stage in stagegraph.stages_for(plan)}


def cached_stages(rc: RenderedCell) -> list[CachedStage]:
    """The cell's stages that get a ref, in build order; `final` is the cell's own target and is not among them."""
    ids = stage_identities(rc)
    parents = stage_parents(rc)

    def ancestors(name: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for parent in parents[name]:
            if makes_layers(rc.stages[parent]):
                found.append((parent, ids[parent]))
            found.extend(ancestors(parent))
        return list(dict.fromkeys(found))

    return [CachedStage(name, ids[name], rc, tuple(ancestors(name)))
            for name, text in rc.stages.items() if name != "final" and makes_layers(text)]


def distinct_stages(cells: list[RenderedCell]) -> dict[str, CachedStage]:
    """identity -> stage, over the cells, each built from the first cell that contains it."""
    out: dict[str, CachedStage] = {}
    for rc in cells:
        for stage in cached_stages(rc):
            out.setdefault(stage.identity, stage)
    return out


def shared_identities(all_cells: list[RenderedCell]) -> set[str]:
    """Identities of the stages two or more cells of the matrix contain."""
    seen: dict[str, int] = {}
    for rc in all_cells:
        for stage in cached_stages(rc):
            seen[stage.identity] = seen.get(stage.identity, 0) + 1
    return {identity for identity, count in seen.items() if count > 1}


@dataclass(frozen=True)
class CachePlan:
    """What one build imports and exports, as bake targets laid over the rendered bake file."""

    repo: str
    cells: list[RenderedCell]
    exported: list[CachedStage]
    only_stage: str | None = None
    export_final: bool = True

    @property
    def stage_targets(self) -> dict[str, CachedStage]:
        return {s.target: s for s in self.exported}

    def targets(self, cell_names: list[str]) -> list[str]:
        """Bake targets for these cells: the stages of theirs this build exports, then (unless only a stage is
        built) the cells themselves."""
        ids = {i for rc in self.cells if rc.cell.name in cell_names for i in stage_identities(rc).values()}
        stages = [s.target for s in self.exported if s.identity in ids]
        return stages + ([] if self.only_stage else list(cell_names))

    def overlay(self, *, context_root: str, cell_outputs: dict[str, dict[str, list[str]]]) -> str:
        """The bake file laid over the rendered one; `cell_outputs` holds each cell's output fields (load, or
        push under its tags)."""
        targets: dict[str, Any] = {}
        for stage in self.exported:
            imports = [(stage.name, stage.identity), *stage.ancestors]
            targets[stage.target] = {
                **cell_target(stage.cell, context_root=context_root),
                "target": stage.name,
                "tags": [],
                "cache-from": [f"type=registry,ref={ref(self.repo, name, i)}" for name, i in imports],
                "cache-to": [f"type=registry,ref={ref(self.repo, stage.name, stage.identity)},mode=max"],
                "output": ["type=cacheonly"],
            }
        if not self.only_stage:
            for rc in self.cells:
                ids = stage_identities(rc)
                own = [(s.name, s.identity) for s in cached_stages(rc)] + [("final", ids["final"])]
                # mode=min: final's ref holds final's own layers; every stage it builds on has a ref of its own,
                # so mode=max here would write the shared stages' records into every cell's ref.
                final = f"type=registry,ref={ref(self.repo, 'final', ids['final'])},mode=min"
                targets[rc.cell.name] = {
                    "cache-from": [f"type=registry,ref={ref(self.repo, name, i)}" for name, i in own],
                    "cache-to": [final] if self.export_final else [],
                    **cell_outputs[rc.cell.name],
                }
        return json.dumps({"target": targets}, indent=2) + "\n"


def shared_imports(plan: CachePlan, all_cells: list[RenderedCell]) -> list[tuple[str, str, str]]:
    """(cell, stage, ref) of every stage of the plan's cells that another cell of the matrix shares: what a cell step
    (`--cache-export own`) must import, since the pipeline gives each of them to a stage step of its own."""
    shared = shared_identities(all_cells)
    return [(rc.cell.name, stage.name, ref(plan.repo, stage.name, stage.identity))
            for rc in plan.cells for stage in cached_stages(rc) if stage.identity in shared]


def require_shared_refs(plan: CachePlan, all_cells: list[RenderedCell], has_ref: Callable[[str], bool]) -> None:
    """The fleet guard of a cell step: every shared stage it contains must be in the cache before its bake starts.
    Where a ref is missing (its stage step has not run, failed, or exported elsewhere), BuildKit would quietly
    compile that stage again in this step, on this agent (a full vLLM compile per arch); the step stops instead,
    naming the stage and the ref."""
    missing: dict[str, tuple[str, str]] = {}
    for cell, stage, wanted in shared_imports(plan, all_cells):
        if wanted not in missing and not has_ref(wanted):
            missing[wanted] = (cell, stage)
    if missing:
        raise CacheError(
            "--cache-export own builds only the cell's own stages, but the stage cache lacks shared stages it "
            "imports; their stage steps must run (and succeed) first, with the same --cache: "
            + "; ".join(f"{stage} of {cell} (ref {wanted} is missing)" for wanted, (cell, stage) in missing.items()))


def plan(repo: str, cells: list[RenderedCell], all_cells: list[RenderedCell], *, export: Export = "all",
         only_stage: str | None = None) -> CachePlan:
    """The cache plan of a build of `cells` (out of the matrix's `all_cells`).

    `only_stage`: build and export just that stage of the selected cells (a CI stage step). `export="own"`: leave
    the stages other cells share to their own steps (a CI cell step), importing them only."""
    repo = checked_repo(repo)
    stages = list(distinct_stages(cells).values())
    if only_stage is not None:
        stages = [s for s in stages if s.name == only_stage]
        if not stages:
            names = sorted({s.name for s in distinct_stages(cells).values()})
            raise CacheError(f"--stage {only_stage!r}: the selected cells have no such stage with layers to cache; "
                             f"they have: {', '.join(names)}")
    elif export == "own":
        shared = shared_identities(all_cells)
        stages = [s for s in stages if s.identity not in shared]
    elif export == "none":
        stages = []
    return CachePlan(repo, cells, stages, only_stage, export_final=export != "none")
