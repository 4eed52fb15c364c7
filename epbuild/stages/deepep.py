"""`deepep`: DeepEP's ROCm wheel for the cell's archs and NIC, linked against the `rocshmem` stage."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface, Use
from epbuild.stages import Stage

KEY = "components.deepep"


def flag_uses(plan: CellPlan) -> list[Use]:
    """DeepEP's own setup.py options (ROCm/DeepEP setup.py), in the order its README gives them, each with the
    matrix key that asked for it."""
    pin = plan.matrix.components.deepep
    uses = [Use("flag", "--variant", "the deepep stage (always rocm)", "rocm")]
    if pin.explicit_ctx:
        uses.append(Use("flag", "--rocm-explicit-ctx", f"{KEY}.explicit_ctx"))
    if pin.disable_ctx:
        uses.append(Use("flag", "--rocm-disable-ctx", f"{KEY}.disable_ctx"))
    if pin.enable_mpi:
        uses.append(Use("flag", "--enable-mpi", f"{KEY}.enable_mpi"))
    if pin.aiter_moe:
        uses.append(Use("flag", "--aiter-moe", f"{KEY}.aiter_moe"))
    if pin.gfx942_fp8_fnuz_max is not None:
        uses.append(Use("flag", "--rocm-gfx942-fp8-fnuz-max", f"{KEY}.gfx942_fp8_fnuz_max",
                        format(pin.gfx942_fp8_fnuz_max, "g")))
    uses.append(Use("flag", "--nic", f"axes.nic ({plan.cell.nic})", plan.cell.nic))
    return uses


def setup_flags(plan: CellPlan) -> list[str]:
    out: list[str] = []
    for use in flag_uses(plan):
        out.append(use.name)
        if use.value is not None:
            out.append(use.value)
    return out


def interface(plan: CellPlan) -> Interface:
    env = [Use("env", "ROCSHMEM_DIR", "components.rocshmem.install_prefix"),
           Use("env", "ROCM_HOME", "base.rocm_path"),
           Use("env", "PYTORCH_ROCM_ARCH", f"axes.arch ({plan.cell.arch})")]
    return Interface(flag_uses(plan) + env, parser="setup.py", readers=("setup.py",))


def context(plan: CellPlan) -> dict[str, Any]:
    return {
        "flags": " ".join(setup_flags(plan)),
        "rocshmem_prefix": plan.matrix.components.rocshmem.install_prefix,
        "gpu_targets": plan.cell.gpu_targets,
    }


STAGE = Stage("deepep", context, source="deepep", interface=interface)
