"""A toy component for tests/integration/test_toy_component.py: the whole of a component in one folder, added
to a matrix through `component_dirs` (a stand-in compiling one HIP file, a stage after base, a wheel for final)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from epbuild.model.component import Component, StageInput, Wheel
from epbuild.model.pins import SourcePin


class ToyPin(SourcePin):
    pass


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"]}


COMPONENT = Component(
    name="toy",
    pin=ToyPin,
    context=context,
    output=Wheel(("epbuild-toy",)),
    uses=("gpu_targets",),
    required=False,
    folder=Path(__file__).resolve().parent,
)
