"""MoRI: its wheel for the cell's archs; NIC-independent, so shared by every cell of one arch and base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epbuild.component import Component, StageInput, Wheel
from epbuild.interface import Interface, Use
from epbuild.pins import SourcePin


class MoriPin(SourcePin):
    pass


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"]}


def interface(stage: StageInput) -> Interface:
    # setup.py@2d02c6a9 reads MORI_GPU_ARCHS (over GPU_ARCHS and PYTORCH_ROCM_ARCH).
    return Interface([Use("env", "MORI_GPU_ARCHS", f"axes.arch ({stage.cell['gpu_targets']})")],
                     readers=("setup.py",))


COMPONENT = Component(
    name="mori",
    pin=MoriPin,
    context=context,
    output=Wheel(("mori",)),
    uses=("gpu_targets",),
    required=False,
    # ROCm/mori setup.py keeps only these archs.
    archs=("gfx942", "gfx950"),
    interface=interface,
    # setup.py@2d02c6a9: use_scm_version=True, no fallback; build requirements in requirements-build.txt.
    scm_distribution="mori",
    build_requirements=("requirements-build.txt",),
    folder=Path(__file__).resolve().parent,
)
