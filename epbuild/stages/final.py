"""`final`: the shipped image. Copies installs and wheels from the build stages and records what it is."""

from __future__ import annotations

from typing import Any

from epbuild import manifest
from epbuild.plan import CellPlan
from epbuild.stages import Stage, vendor


def context(plan: CellPlan, key: str = "") -> dict[str, Any]:
    """With key="" this renders the keyless text the content key is computed from."""
    from epbuild.stages import wheel_stages

    return {
        "parent": vendor.parent(plan),
        "rocshmem_prefix": plan.matrix.components.rocshmem.install_prefix,
        "wheel_stages": wheel_stages(plan),
        "env": plan.matrix.runtime_env,
        "labels": manifest.labels(plan, key),
    }


STAGE = Stage("final", context, keyed=True)
