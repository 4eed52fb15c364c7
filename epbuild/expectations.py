"""What a cell's image must carry, derived from the matrix and the render: the input of the image checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epbuild import manifest
from epbuild.render import RenderedCell
from epbuild.plan import CellPlan
from epbuild.stages import built_pins
from epbuild.vendor import PROVIDER_LIBRARY

ROCSHMEM_DLOPEN = {"mlx5": ["libmlx5.so"], "ionic": ["libionic.so"],
                   "bnxt_re": ["libbnxt_re.so", "/usr/local/lib/libbnxt_re.so"]}
"""What rocSHMEM dlopens for each provider, in order (rocm-systems projects/rocshmem; see docs/upstream.md): for
Thor2 the name, then Broadcom's copy in /usr/local/lib, which is why Broadcom's post-install step copies it there."""
ROCSHMEM_GDA_BACKEND = {"mlx5": "GDA_MLX5", "ionic": "GDA_IONIC", "bnxt_re": "GDA_BNXT"}
"""rocSHMEM's CMake option for each provider's GPU-direct-async backend (all_backends turns each on)."""

EXPECTED_ENV = "EPBUILD_EXPECTED"
"""The image checks (tests/image) read the path of the expectation file from this variable."""


def rdma_core_version(tag: str | None) -> str | None:
    """rdma-core's libraries end in the release number of the tag: v62.0 installs libibverbs.so.1.X.62.0."""
    if tag and tag.startswith("v") and tag[1:].replace(".", "").isdigit():
        return tag[1:]
    return None


def expectation(rc: RenderedCell, image: str) -> dict[str, Any]:
    plan = rc.plan
    components = list(built_pins(plan))
    return {
        "image": image,
        "cell": rc.cell.name,
        "archs": list(rc.cell.archs),
        "nic": rc.cell.nic,
        "provider": plan.nic.provider,
        "rdma_core": plan.nic.rdma_core,
        "rdma_core_version": rdma_core_version(plan.matrix.components.rdma_core.tag),
        "rocshmem_prefix": plan.matrix.components.rocshmem.install_prefix,
        "components": components,
        "base_image": plan.matrix.base.image,
        "manifest": manifest.manifest(plan, rc.key),
        "labels": manifest.labels(plan, rc.key),
        "runtime_env": dict(plan.matrix.runtime_env),
        **nic_userspace(plan),
    }


def nic_userspace(plan: CellPlan) -> dict[str, Any]:
    """What the NIC's userspace must look like in the image: the vendor's pinned packages and the library its
    provider loads (rocSHMEM dlopens `<library>.so`), the rocSHMEM GDA backend for the provider, and the vendor
    library MoRI links where the pinned MoRI compiles it in."""
    library = PROVIDER_LIBRARY[plan.nic.provider]
    vendor = plan.vendor
    return {
        "vendor": None if vendor is None else {"packages": dict(vendor.packages), "library": library,
                                               "dlopen": ROCSHMEM_DLOPEN[plan.nic.provider]},
        "rocshmem_backend": ROCSHMEM_GDA_BACKEND[plan.nic.provider],
        "mori_vendor_library": library if plan.mori_vendor_flag else None,
    }


def write(expect: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expect, indent=2, sort_keys=True) + "\n")
    return path
