"""`final`: the shipped image. Copies installs and wheels from the build stages and records what it is."""

from __future__ import annotations

from typing import Any

from epbuild import manifest
from epbuild.plan import CellPlan
from epbuild.stages import Stage


def context(plan: CellPlan, key: str = "") -> dict[str, Any]:
    """With key="" this renders the keyless text the content key is computed from."""
    from epbuild.stages import wheel_stages

    return {
        "parent": "rdma-core" if plan.rdma_core_from_source else "base",
        "rocshmem_prefix": plan.matrix.components.rocshmem.install_prefix,
        "wheel_stages": wheel_stages(plan),
        "vendor_packages": plan.nic.vendor_packages,
        "env": plan.matrix.runtime_env,
        "labels": manifest.static_labels(plan, key),
    }


STAGE = Stage("final", context, keyed=True)
