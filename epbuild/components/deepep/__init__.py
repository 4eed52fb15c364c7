"""DeepEP: its ROCm wheel for the cell's archs and NIC, linked against the `rocshmem` stage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import Field

from epbuild.model.component import Component, StageInput, Wheel
from epbuild.model.interface import Interface, Use
from epbuild.model.nic_offer import NicOffer, argparse_choices
from epbuild.model.pins import SourcePin

if TYPE_CHECKING:
    from epbuild.components.rocshmem import RocshmemPin


class DeepepPin(SourcePin):
    explicit_ctx: bool = Field(True, description="--rocm-explicit-ctx")
    disable_ctx: bool = Field(False, description="--rocm-disable-ctx")
    enable_mpi: bool = Field(False, description="--enable-mpi")
    aiter_moe: bool = Field(False, description="--aiter-moe")
    gfx942_fp8_fnuz_max: float | None = Field(None, gt=0, le=65504, description="--rocm-gfx942-fp8-fnuz-max N")


KEY = "components.deepep"


def flag_uses(pin: DeepepPin, nic_flag: str) -> list[Use]:
    """DeepEP's own setup.py options (ROCm/DeepEP setup.py), in the order its README gives them, each with the
    matrix key that asked for it."""
    uses = [Use("flag", "--variant", "the deepep stage (always rocm)", "rocm")]
    if pin.explicit_ctx:
        uses.append(Use("flag", "--rocm-explicit-ctx", f"{KEY}.explicit_ctx"))
    if pin.disable_ctx:
        uses.append(Use("flag", "--rocm-disable-ctx", f"{KEY}.disable_ctx"))
    if pin.enable_mpi:
        uses.append(Use("flag", "--enable-mpi", f"{KEY}.enable_mpi"))
    if pin.aiter_moe:
        uses.append(Use("flag", "--aiter-moe", f"{KEY}.aiter_moe"))
    if pin.gfx942_fp8_fnuz_max is not None:
        uses.append(Use("flag", "--rocm-gfx942-fp8-fnuz-max", f"{KEY}.gfx942_fp8_fnuz_max",
                        format(pin.gfx942_fp8_fnuz_max, "g")))
    uses.append(Use("flag", "--nic", f"nics.<nic>.flags.deepep ({nic_flag})", nic_flag))
    return uses


def setup_flags(pin: DeepepPin, nic_flag: str) -> list[str]:
    out: list[str] = []
    for use in flag_uses(pin, nic_flag):
        out += [use.name] + ([use.value] if use.value is not None else [])
    return out


def interface(stage: StageInput) -> Interface:
    env = [Use("env", "ROCSHMEM_DIR", "components.rocshmem.install_prefix"),
           Use("env", "ROCM_HOME", "bases.<base>.rocm_path"),
           Use("env", "PYTORCH_ROCM_ARCH", f"axes.arch ({stage.cell['gpu_targets']})")]
    return Interface(flag_uses(stage.pin, stage.cell["nic.flag"]) + env, parser="setup.py", readers=("setup.py",))


def context(stage: StageInput) -> dict[str, Any]:
    return {
        "flags": " ".join(setup_flags(stage.pin, stage.cell["nic.flag"])),
        # The registry holds epbuild's own rocshmem component (a name defined twice is refused), so its pin model.
        "rocshmem_prefix": cast("RocshmemPin", stage.pins["rocshmem"]).install_prefix,
        "gpu_targets": stage.cell["gpu_targets"],
    }


def nic_support(pin: SourcePin, tree: Path) -> NicOffer | None:
    """The NICs setup.py's `--nic` accepts at the pin (`choices=[...]`; ROCm/DeepEP setup.py@a9ea9774: cx7, io,
    thor2)."""
    setup = tree / "setup.py"
    if not setup.is_file():
        return None
    choices = argparse_choices(setup.read_text(errors="replace"), "--nic")
    if choices is None:
        return None
    return NicOffer("flag", frozenset(choices), f"setup.py --nic choices at {pin.commit[:12]}")


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
    interface=interface,
    nic_support=nic_support,
    # setup.py@a9ea9774 appends `+$(git rev-parse --short HEAD)` to its version; the exported tree has no .git.
    git_head=True,
    folder=Path(__file__).resolve().parent,
)
