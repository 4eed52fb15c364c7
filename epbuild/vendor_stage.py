"""The `vendor` stage's render context: the NIC's vendor userspace (nics.<nic>.vendor), installed from the .debs
epbuild fetched and verified on the host (epbuild/vendor_repo.py). rocSHMEM, `final` and any stage whose spec says
its build takes something from it (`vendor_build`, e.g. MoRI 2d02c6a9's USE_BNXT) build on it; a NIC with
`vendor: none` has no such stage."""

from __future__ import annotations

import shlex
from typing import Any

from epbuild.plan import CellPlan


def context(plan: CellPlan, key: str = "") -> dict[str, Any]:
    vendor = plan.vendor
    assert vendor is not None
    return {
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
