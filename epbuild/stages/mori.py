"""`mori`: MoRI's wheel for the cell's archs. Shared by every cell of one arch, except where the pinned MoRI
compiles a NIC vendor's library in (components.mori.nic_build_flags; MoRI 2d02c6a9: USE_BNXT, with
`find_library(BNXT_RE_LIB NAMES bnxt_re)` in its CMakeLists.txt): those NICs' MoRI builds on their `vendor`
stage with the flag on."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    flag = plan.mori_vendor_flag
    return {"gpu_targets": plan.cell.gpu_targets, "parent": "vendor" if flag else "base", "vendor_flag": flag}


STAGE = Stage("mori", context, applies=lambda plan: plan.matrix.components.mori is not None, source="mori")
