"""`rdma-core`: built from source for NICs whose provider needs it (cx7, io); identical in all those cells."""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage

STAGING_ROOT = "/opt/epbuild/rdma-core"
"""Where the stage installs a second copy (DESTDIR) that `final` copies, without the build tree."""


def context(plan: CellPlan) -> dict[str, Any]:
    return {"staging_root": STAGING_ROOT}


STAGE = Stage("rdma-core", context, applies=lambda plan: plan.rdma_core_from_source, source="rdma-core")
