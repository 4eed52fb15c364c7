"""`vllm`: vLLM's ROCm wheel for the cell's archs; shared by every cell of one arch."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    return {"gpu_targets": plan.cell.gpu_targets}


STAGE = Stage("vllm", context, source="vllm")
