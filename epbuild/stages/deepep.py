"""`deepep`: DeepEP's ROCm wheel for the cell's archs and NIC, linked against the `rocshmem` stage."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage


def setup_flags(plan: CellPlan) -> list[str]:
    """DeepEP's own setup.py options (ROCm/DeepEP setup.py), in the order its README gives them."""
    pin = plan.matrix.components.deepep
    flags = ["--variant", "rocm"]
    if pin.explicit_ctx:
        flags.append("--rocm-explicit-ctx")
    if pin.disable_ctx:
        flags.append("--rocm-disable-ctx")
    if pin.enable_mpi:
        flags.append("--enable-mpi")
    if pin.aiter_moe:
        flags.append("--aiter-moe")
    if pin.gfx942_fp8_fnuz_max is not None:
        flags += ["--rocm-gfx942-fp8-fnuz-max", format(pin.gfx942_fp8_fnuz_max, "g")]
    return flags + ["--nic", plan.cell.nic]


def context(plan: CellPlan) -> dict[str, Any]:
    return {
        "flags": " ".join(setup_flags(plan)),
        "rocshmem_prefix": plan.matrix.components.rocshmem.install_prefix,
        "gpu_targets": plan.cell.gpu_targets,
    }


STAGE = Stage("deepep", context, source="deepep")
