"""The CI pipelines' build graph: every distinct stage that two or more cells share becomes one step of its own,
which builds it into the stage cache once for the whole fleet; each cell's step waits for the shared stages it
contains and imports them from the cache, building only its own stages.

The graph is made of the same stage identities as the stage cache's refs (epbuild/build/stage_cache.py) and, through
them, the stages BuildKit deduplicates in a bake, so the pipeline and the build cannot disagree on what is
shared. Step keys name the stage and the first cell that contains it (not the identity), so moving a pin
changes what a step builds, not the pipeline's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from epbuild.build.stage_cache import CachedStage, cached_stages, distinct_stages, shared_identities
from epbuild.render.dockerfiles import RenderedCell


@dataclass(frozen=True)
class StageStep:
    """One shared stage, built once, from the first cell that contains it."""

    stage: CachedStage
    cells: tuple[str, ...]
    """Every cell that contains the stage."""
    needs: tuple[str, ...]
    """Keys of the stage steps it builds on (its nearest shared ancestors)."""

    @property
    def key(self) -> str:
        return f"stage-{self.stage.name}-{self.cells[0]}"

    @property
    def cell(self) -> RenderedCell:
        return self.stage.cell

    @property
    def label(self) -> str:
        return f"{self.stage.name} (shared by {', '.join(self.cells)})"


@dataclass(frozen=True)
class PipelineGraph:
    stages: list[StageStep]
    """In build order: a step comes after every step it needs."""
    cell_needs: dict[str, list[str]]
    """Cell name -> keys of the stage steps whose stages the cell contains."""


def pipeline_graph(cells: list[RenderedCell]) -> PipelineGraph:
    shared = shared_identities(cells)
    holders: dict[str, list[str]] = {}
    for rc in cells:
        for stage in cached_stages(rc):
            holders.setdefault(stage.identity, []).append(rc.cell.name)
    steps: dict[str, StageStep] = {}
    for identity, stage in distinct_stages(cells).items():  # cells' build order: ancestors come first
        if identity not in shared:
            continue
        # Every ancestor of a shared stage is shared too: its identity is part of the stage's.
        ancestors = [identity for _, identity in stage.ancestors]
        nearest = [a for a in ancestors
                   if not any(a in dict(steps[other].stage.ancestors).values() for other in ancestors if other != a)]
        steps[identity] = StageStep(stage, tuple(holders[identity]), tuple(steps[a].key for a in nearest))
    cell_needs = {rc.cell.name: [steps[s.identity].key for s in cached_stages(rc) if s.identity in steps]
                  for rc in cells}
    return PipelineGraph(list(steps.values()), cell_needs)
