"""`mori`: MoRI's wheel for the cell's archs; NIC-independent, so shared by every cell of one arch."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    return {"gpu_targets": plan.cell.gpu_targets}


STAGE = Stage("mori", context, applies=lambda plan: plan.matrix.components.mori is not None, source="mori")
