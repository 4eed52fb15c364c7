"""MoRI: its wheel for the cell's archs; NIC-independent, so shared by every cell of one arch and base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epbuild.component import Component, StageInput, Wheel
from epbuild.pins import SourcePin


class MoriPin(SourcePin):
    pass


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"]}


COMPONENT = Component(
    name="mori",
    pin=MoriPin,
    context=context,
    output=Wheel(("mori",)),
    uses=("gpu_targets",),
    required=False,
    # ROCm/mori setup.py keeps only these archs.
    archs=("gfx942", "gfx950"),
    folder=Path(__file__).resolve().parent,
)
