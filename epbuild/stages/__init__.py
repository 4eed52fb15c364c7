"""The stage graph: one module per stage, each owning its render context and when it applies.

A stage's context holds only the values its template uses, so a stage that does not depend on a cell's arch or
NIC renders to the same text in every cell and BuildKit builds it once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface


@dataclass(frozen=True)
class Stage:
    name: str
    context: Callable[..., dict[str, Any]]
    applies: Callable[[CellPlan], bool] = lambda plan: True
    source: str | None = None
    """The component whose source this stage mounts as the named context `src-<source>`."""
    keyed: bool = False
    """The stage's context takes the content key (only `final`: the key must never feed a build stage)."""
    interface: Callable[[CellPlan], Interface] | None = None
    """What the stage passes to its component's source (flags, environment, files), for preflight."""
    scm_distribution: str | None = None
    """The distribution whose setuptools-scm version the host computes and hands over as `scm-<source>`."""
    scm_fallback: str | None = None
    """The component's own `fallback_version` (used by setuptools-scm only where no tag is reachable)."""
    build_requirements: tuple[str, ...] = ()
    """Requirement files (in the source) resolved on the host into the wheelhouse context `wheels-<source>`."""

    @property
    def template(self) -> str:
        return f"stages/{self.name}.Dockerfile.j2"


def stages() -> list[Stage]:
    """Every stage in build order; `final` last."""
    from epbuild.stages import aiter, base, deepep, final, mori, rdma_core, rocshmem, vllm

    return [base.STAGE, rdma_core.STAGE, rocshmem.STAGE, deepep.STAGE, mori.STAGE, aiter.STAGE, vllm.STAGE,
            final.STAGE]


def stages_for(plan: CellPlan) -> list[Stage]:
    return [s for s in stages() if s.applies(plan)]


def built_pins(plan: CellPlan) -> dict[str, Any]:
    """The pins of the components this cell builds (thor2 cells do not build rdma-core), in build order."""
    sources = {s.source for s in stages_for(plan) if s.source}
    return {name: pin for name, pin in plan.pins.items() if name in sources}


def wheel_stages(plan: CellPlan) -> list[str]:
    """Stages that leave a wheel in /wheels/<stage> for `final` to install."""
    return [s.name for s in stages_for(plan) if s.name in ("deepep", "mori", "aiter", "vllm")]
