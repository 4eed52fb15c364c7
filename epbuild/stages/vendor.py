"""`vendor`: the NIC's vendor userspace (nics.<nic>.vendor), installed from .debs epbuild fetched and verified on
the host (epbuild/vendor_repo.py). rocSHMEM, `final` and, where the pinned MoRI compiles the vendor library in,
MoRI build on it; a NIC with `vendor: none` has no such stage."""

from __future__ import annotations

import shlex
from typing import Any

from epbuild.plan import CellPlan
from epbuild.stages import Stage

def context(plan: CellPlan) -> dict[str, Any]:
    vendor = plan.vendor
    assert vendor is not None
    return {
        "parent": "rdma-core" if plan.rdma_core_from_source else "base",
        "repo": vendor.repo.url,
        "suite": vendor.repo.suite,
        "component": vendor.repo.component,
        "fingerprint": vendor.key.fingerprint,
        # Sorted by name, the order dpkg-query lists them in, so the two lists compare line by line.
        "names": [shlex.quote(name) for name in sorted(vendor.packages)],
        "pins": [shlex.quote(f"{name}={version}") for name, version in sorted(vendor.packages.items())],
        # The glob must stay unquoted to expand; the matrix pattern admits only inert characters before it.
        "copies": [(shlex.quote(step.copy_files.rstrip("*")) + ("*" if step.copy_files.endswith("*") else ""),
                    shlex.quote(step.to)) for step in vendor.post_install],
    }


def parent(plan: CellPlan) -> str:
    """Where the NIC's userspace is complete: `vendor` where it has one, else rdma-core (source) or base."""
    if plan.vendor is not None:
        return "vendor"
    return "rdma-core" if plan.rdma_core_from_source else "base"


STAGE = Stage("vendor", context, applies=lambda plan: plan.vendor is not None)
