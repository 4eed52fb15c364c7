"""`aiter`: AITER's wheel with prebuilt kernels for the cell's archs; shared by every cell of one arch."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface, Use
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    pin = plan.matrix.components.aiter
    assert pin is not None
    return {"gpu_targets": plan.cell.gpu_targets, "prebuild_kernels": int(pin.prebuild_kernels)}


def interface(plan: CellPlan) -> Interface:
    # setup.py@6a0e7b26 reads PREBUILD_KERNELS; aiter/jit/core.py reads GPU_ARCHS (setup.py imports it).
    return Interface([Use("env", "PREBUILD_KERNELS", "components.aiter.prebuild_kernels"),
                      Use("env", "GPU_ARCHS", f"axes.arch ({plan.cell.arch})")],
                     readers=("setup.py", "aiter/jit/*.py", "aiter/jit/utils/*.py"))


# Distribution amd-aiter, `fallback_version = "0.1.0"` (setup.py and pyproject.toml at 6a0e7b26).
STAGE = Stage("aiter", context, applies=lambda plan: plan.matrix.components.aiter is not None, source="aiter",
              interface=interface, scm_distribution="amd-aiter", scm_fallback="0.1.0",
              build_requirements=("requirements.txt",))
