"""MoRI: its wheel for the cell's archs. Shared by every cell of one arch and base, except where the pinned MoRI
compiles a NIC vendor's library in (nic_build_flags; MoRI 2d02c6a9: USE_BNXT, with
`find_library(BNXT_RE_LIB NAMES bnxt_re)` in its CMakeLists.txt): those NICs' MoRI builds on their `vendor`
stage with the flag on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from epbuild.components.mori.nic_flags import check_source
from epbuild.model.component import Component, StageInput, Wheel
from epbuild.model.interface import Interface, Use
from epbuild.model.nic_offer import NicOffer
from epbuild.model.patterns import EnvName, LibName
from epbuild.model.pins import SourcePin


class MoriPin(SourcePin):
    nic_build_flags: dict[LibName, EnvName] = Field(
        default_factory=dict,
        description="The environment flag MoRI's setup.py reads, at this pin, to compile a provider's vendor library "
        "in (by provider). 2d02c6a9: {bnxt_re: USE_BNXT}; 6b5a1e53 adds ionic: USE_IONIC; ead84d86 and later load "
        "vendor libraries at run time: {}. MoRI is built per NIC only for the providers listed.",
    )


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"], "vendor_flag": stage.cell["nic.vendor_build"]}


def vendor_build(pin: SourcePin, cell: Mapping[str, Any]) -> str | None:
    assert isinstance(pin, MoriPin)
    return pin.nic_build_flags.get(cell["nic.provider"])


def preflight(pin: SourcePin, cell: Mapping[str, Any]) -> list[str]:
    assert isinstance(pin, MoriPin)
    provider = cell["nic.provider"]
    if provider in pin.nic_build_flags and cell["nic.vendor"] is None:
        return [f"MoRI at {pin.commit} compiles the {provider} vendor library in (nic_build_flags.{provider}), "
                f"so nics.{cell['nic']}.vendor must give that userspace, not `none`"]
    return []


def matrix_check(pin: SourcePin, matrix: Any) -> list[tuple[tuple[str | int, ...], str]]:
    assert isinstance(pin, MoriPin)
    providers = sorted({info.provider for info in matrix.nics.values()})
    return [(("nic_build_flags", provider), f"no NIC of the matrix has provider {provider!r}; the nics table's "
                                            f"providers are {', '.join(providers)}")
            for provider in pin.nic_build_flags if provider not in providers]


def source_check(pin: SourcePin, tree: Path) -> list[str]:
    assert isinstance(pin, MoriPin)
    return check_source(dict(pin.nic_build_flags), pin.commit, tree)


PROVIDERS_DIR = "src/application/transport/rdma/providers"
PROVIDER_OF_FOLDER = {"mlx5": "mlx5", "bnxt": "bnxt_re", "ionic": "ionic"}
"""MoRI's provider folders and the libibverbs provider each drives: 2d02c6a9 has bnxt, ibverbs (generic verbs, no
vendor's direct verbs) and mlx5; ionic arrived in 6b5a1e53 (and is loaded at run time from ead84d86 on)."""


def nic_support(pin: SourcePin, tree: Path) -> NicOffer | None:
    folder = tree / PROVIDERS_DIR
    if not folder.is_dir():
        return None
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return NicOffer("provider", frozenset(PROVIDER_OF_FOLDER[f] for f in found if f in PROVIDER_OF_FOLDER),
                    f"{PROVIDERS_DIR}/ at {pin.commit[:12]} has {', '.join(found) or 'nothing'}")


def interface(stage: StageInput) -> Interface:
    # setup.py@2d02c6a9 reads MORI_GPU_ARCHS (over GPU_ARCHS and PYTORCH_ROCM_ARCH).
    return Interface([Use("env", "MORI_GPU_ARCHS", f"axes.arch ({stage.cell['gpu_targets']})")],
                     readers=("setup.py",))


COMPONENT = Component(
    name="mori",
    pin=MoriPin,
    context=context,
    output=Wheel(("mori",)),
    uses=("gpu_targets", "nic.vendor_build"),
    required=False,
    # ROCm/mori setup.py keeps only these archs.
    archs=("gfx942", "gfx950"),
    interface=interface,
    # setup.py@2d02c6a9: use_scm_version=True, no fallback; build requirements in requirements-build.txt.
    scm_distribution="mori",
    build_requirements=("requirements-build.txt",),
    vendor_build=vendor_build,
    preflight=preflight,
    source_check=source_check,
    nic_support=nic_support,
    matrix_check=matrix_check,
    folder=Path(__file__).resolve().parent,
)
