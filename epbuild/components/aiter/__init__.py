"""AITER: its wheel with prebuilt kernels for the cell's archs; shared by every cell of one arch and base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from epbuild.model.component import Component, StageInput, Wheel
from epbuild.model.interface import Interface, Use
from epbuild.model.pins import SourcePin


class AiterPin(SourcePin):
    prebuild_kernels: bool = Field(True, description="PREBUILD_KERNELS=1")


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"], "prebuild_kernels": int(stage.pin.prebuild_kernels)}


def interface(stage: StageInput) -> Interface:
    # setup.py@6a0e7b26 reads PREBUILD_KERNELS; aiter/jit/core.py reads GPU_ARCHS (setup.py imports it).
    return Interface([Use("env", "PREBUILD_KERNELS", "components.aiter.prebuild_kernels"),
                      Use("env", "GPU_ARCHS", f"axes.arch ({stage.cell['gpu_targets']})")],
                     readers=("setup.py", "aiter/jit/*.py", "aiter/jit/utils/*.py"))


COMPONENT = Component(
    name="aiter",
    pin=AiterPin,
    context=context,
    output=Wheel(("amd-aiter", "aiter")),
    uses=("gpu_targets",),
    required=False,
    interface=interface,
    # Distribution amd-aiter, `fallback_version = "0.1.0"` (setup.py and pyproject.toml at 6a0e7b26); the
    # reference installs requirements.txt before building.
    scm_distribution="amd-aiter",
    scm_fallback="0.1.0",
    build_requirements=("requirements.txt",),
    folder=Path(__file__).resolve().parent,
)
