"""`rocshmem`: rocSHMEM's all_backends build for the cell's archs, on top of the cell's NIC userspace (its
libibverbs, and the vendor's libraries its GDA backends load)."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage, vendor


def context(plan: CellPlan) -> dict[str, Any]:
    pin = plan.matrix.components.rocshmem
    return {
        "parent": vendor.parent(plan),
        "path": pin.path,
        "prefix": pin.install_prefix,
        "gpu_targets": plan.cell.gpu_targets,
    }


STAGE = Stage("rocshmem", context, source="rocshmem")
