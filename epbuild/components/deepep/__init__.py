"""DeepEP: its ROCm wheel for the cell's archs and NIC, linked against the `rocshmem` stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from epbuild.component import Component, StageInput, Wheel
from epbuild.pins import SourcePin


class DeepepPin(SourcePin):
    explicit_ctx: bool = Field(True, description="--rocm-explicit-ctx")
    disable_ctx: bool = Field(False, description="--rocm-disable-ctx")
    enable_mpi: bool = Field(False, description="--enable-mpi")
    aiter_moe: bool = Field(False, description="--aiter-moe")
    gfx942_fp8_fnuz_max: float | None = Field(None, gt=0, le=65504, description="--rocm-gfx942-fp8-fnuz-max N")


def setup_flags(pin: DeepepPin, nic_flag: str) -> list[str]:
    """DeepEP's own setup.py options (ROCm/DeepEP setup.py), in the order its README gives them."""
    flags = ["--variant", "rocm"]
    if pin.explicit_ctx:
        flags.append("--rocm-explicit-ctx")
    if pin.disable_ctx:
        flags.append("--rocm-disable-ctx")
    if pin.enable_mpi:
        flags.append("--enable-mpi")
    if pin.aiter_moe:
        flags.append("--aiter-moe")
    if pin.gfx942_fp8_fnuz_max is not None:
        flags += ["--rocm-gfx942-fp8-fnuz-max", format(pin.gfx942_fp8_fnuz_max, "g")]
    return flags + ["--nic", nic_flag]


def context(stage: StageInput) -> dict[str, Any]:
    return {
        "flags": " ".join(setup_flags(stage.pin, stage.cell["nic.flag"])),
        "rocshmem_prefix": stage.pins["rocshmem"].install_prefix,  # type: ignore[attr-defined]
        "gpu_targets": stage.cell["gpu_targets"],
    }


COMPONENT = Component(
    name="deepep",
    pin=DeepepPin,
    context=context,
    output=Wheel(("deep_ep", "deep-ep")),
    after=("rocshmem",),
    uses=("gpu_targets", "nic.flag"),
    # ROCm/DeepEP setup.py keeps only these archs and accepts only these --nic values.
    archs=("gfx942", "gfx950"),
    nic_flag=("cx7", "io", "thor2"),
    folder=Path(__file__).resolve().parent,
)
