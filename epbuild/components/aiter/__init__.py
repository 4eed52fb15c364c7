"""AITER: its wheel with prebuilt kernels for the cell's archs; shared by every cell of one arch and base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from epbuild.component import Component, StageInput, Wheel
from epbuild.pins import SourcePin


class AiterPin(SourcePin):
    prebuild_kernels: bool = Field(True, description="PREBUILD_KERNELS=1")


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"], "prebuild_kernels": int(stage.pin.prebuild_kernels)}


COMPONENT = Component(
    name="aiter",
    pin=AiterPin,
    context=context,
    output=Wheel(("amd-aiter", "aiter")),
    uses=("gpu_targets",),
    required=False,
    folder=Path(__file__).resolve().parent,
)
