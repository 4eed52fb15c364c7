"""`mori`: MoRI's wheel for the cell's archs; NIC-independent, so shared by every cell of one arch."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface, Use
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    return {"gpu_targets": plan.cell.gpu_targets}


def interface(plan: CellPlan) -> Interface:
    # setup.py@2d02c6a9 reads MORI_GPU_ARCHS (over GPU_ARCHS and PYTORCH_ROCM_ARCH).
    return Interface([Use("env", "MORI_GPU_ARCHS", f"axes.arch ({plan.cell.arch})")], readers=("setup.py",))


STAGE = Stage("mori", context, applies=lambda plan: plan.matrix.components.mori is not None, source="mori",
              interface=interface, scm_distribution="mori", build_requirements=("requirements-build.txt",))
