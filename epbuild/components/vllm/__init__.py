"""vLLM: its ROCm wheel for the cell's archs; shared by every cell of one arch and base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epbuild.component import Component, StageInput, Wheel
from epbuild.pins import SourcePin


class VllmPin(SourcePin):
    pass


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"]}


COMPONENT = Component(
    name="vllm",
    pin=VllmPin,
    context=context,
    output=Wheel(("vllm",)),
    uses=("gpu_targets",),
    folder=Path(__file__).resolve().parent,
)
