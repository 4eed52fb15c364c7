"""`rdma-core`: built from source for NICs whose provider needs it (cx7, io); identical in all those cells.
Its install is the starting point of `rocshmem` and `final` in those cells, so it is installed exactly once."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface, Use
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    return {"replaces": plan.matrix.components.rdma_core.replaces_packages}


def interface(plan: CellPlan) -> Interface:
    return Interface([Use("cmake", "NO_MAN_PAGES", "the rdma-core stage"),
                      Use("cmake", "NO_PYVERBS", "the rdma-core stage")], readers=("CMakeLists.txt",))


STAGE = Stage("rdma-core", context, applies=lambda plan: plan.rdma_core_from_source, source="rdma-core",
              interface=interface)
