"""`aiter`: AITER's wheel with prebuilt kernels for the cell's archs; shared by every cell of one arch."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    pin = plan.matrix.components.aiter
    assert pin is not None
    return {"gpu_targets": plan.cell.gpu_targets, "prebuild_kernels": int(pin.prebuild_kernels)}


STAGE = Stage("aiter", context, applies=lambda plan: plan.matrix.components.aiter is not None, source="aiter")
