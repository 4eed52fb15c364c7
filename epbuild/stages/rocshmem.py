"""`rocshmem`: rocSHMEM's all_backends build for the cell's archs, on top of the cell's libibverbs."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface, Use
from epbuild.stages import Stage

SCRIPT = "scripts/build_configs/all_backends"


def context(plan: CellPlan) -> dict[str, Any]:
    pin = plan.matrix.components.rocshmem
    return {
        "parent": "rdma-core" if plan.rdma_core_from_source else "base",
        "path": pin.path,
        "prefix": pin.install_prefix,
        "gpu_targets": plan.cell.gpu_targets,
    }


def interface(plan: CellPlan) -> Interface:
    return Interface([Use("file", SCRIPT, "the rocshmem stage"),
                      Use("env", "INSTALL_PREFIX", "components.rocshmem.install_prefix"),
                      Use("cmake", "GPU_TARGETS", f"axes.arch ({plan.cell.arch})"),
                      Use("cmake", "USE_EXTERNAL_MPI", "the rocshmem stage (OFF, as the reference)")],
                     readers=(SCRIPT, "CMakeLists.txt", "cmake/*.cmake", "cmake/**/*.cmake"))


STAGE = Stage("rocshmem", context, source="rocshmem", interface=interface)
