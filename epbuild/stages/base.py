"""`base`: the base image plus the build packages every build stage shares."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage


def context(plan: CellPlan) -> dict[str, Any]:
    base = plan.matrix.base
    image = f"{base.image}@{base.digest}" if base.digest else base.image
    return {"image": image, "rocm_path": base.rocm_path, "packages": base.build_packages}


STAGE = Stage("base", context)
