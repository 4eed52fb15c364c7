"""The `vendor` stage's render context: the NIC's vendor userspace (nics.<nic>.vendor), installed from the .debs
epbuild fetched and verified on the host (epbuild/inputs/vendor_repo.py). rocSHMEM, `final` and any stage whose spec says
its build takes something from it (`vendor_build`, e.g. MoRI 2d02c6a9's USE_BNXT) build on it; a NIC with
`vendor: none` has no such stage.

Where the vendor's packages ship the NIC's verbs provider (vendor.provides_provider), the stage first removes every
copy of that provider no package owns: rdma-core's source build installs its own (rdma-core
buildlib/rdma_functions.cmake, rdma_shared_provider: lib<p>.so.1.0.<release>, the plugin
libibverbs/lib<p>-rdmav<ABI>.so, /etc/libibverbs.d/<p>.driver; providers/<p>/CMakeLists.txt: <p>_dv.h and
lib<p>.pc), and left beside the vendor's, ldconfig would point lib<p>.so.1 at the higher version while libibverbs'
plugin still named rdma-core's file, so one process could load both."""

from __future__ import annotations

import shlex
from typing import Any

from epbuild.model.plan import CellPlan

LIBDIR = "/usr/lib/x86_64-linux-gnu"
"""Where rdma-core installs with -DCMAKE_INSTALL_PREFIX=/usr on Debian (GNUInstallDirs' multiarch libdir)."""


def provider_copies(provider: str, library: str) -> list[str]:
    """The paths (last part possibly a glob) of a shared verbs provider's files as rdma-core installs them."""
    return [f"{LIBDIR}/{library}.so", f"{LIBDIR}/{library}.so.*", f"{LIBDIR}/libibverbs/lib{provider}-rdmav*.so",
            f"/etc/libibverbs.d/{provider}.driver", f"/usr/include/infiniband/{provider}_dv.h",
            f"{LIBDIR}/pkgconfig/{library}.pc"]


def _glob_word(path: str) -> str:
    """A path for the shell with its glob stars live: the parts between them quoted."""
    return "*".join(shlex.quote(part) if part else "" for part in path.split("*"))


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
        # The provider's unowned copies to remove first (none where the vendor does not ship the provider).
        "unowned_provider": ([_glob_word(path)
                              for path in provider_copies(plan.nic.provider, plan.nic.provider_library)]
                             if vendor.provides_provider else []),
        # The glob must stay unquoted to expand; the matrix pattern admits only inert characters before it.
        "copies": [(shlex.quote(step.copy_files.rstrip("*")) + ("*" if step.copy_files.endswith("*") else ""),
                    shlex.quote(step.to)) for step in vendor.post_install],
    }
