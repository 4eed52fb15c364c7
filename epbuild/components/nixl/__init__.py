"""NIXL: its wheel, built with meson against the cell's UCX (the ucx stage's install prefix) and carrying UCX's
transport modules, as vLLM's reference builds the nixl-rocm wheel in its `build_nixl` stage
(docker/Dockerfile.rocm@00305ee5). It builds on the ucx stage, so it is per NIC where UCX is."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from epbuild.model.component import Component, ComponentError, StageInput, Wheel, apt_update
from epbuild.model.interface import Interface, Use
from epbuild.model.patterns import AptPackage
from epbuild.model.pins import SourcePin

MESON_OPTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MESON_VALUE = re.compile(r"^[A-Za-z0-9_.,/+-]{1,200}$")


def _meson_option(value: str) -> str:
    if not MESON_OPTION.match(value):
        raise ValueError(f"{value!r} is not a meson option name (a-z, 0-9, _)")
    if value == "ucx_path":
        raise ValueError("ucx_path is set by the stage: the ucx component's install_prefix")
    return value


def _meson_value(value: str) -> str:
    if not MESON_VALUE.match(value):
        raise ValueError(f"{value!r} is not a meson option value (letters, digits and _ . , / + -)")
    return value


MesonOption = Annotated[str, AfterValidator(_meson_option)]
MesonValue = Annotated[str, AfterValidator(_meson_value)]
def _dist_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", value):
        raise ValueError(f"{value!r} is not a distribution name (a-z, 0-9, -)")
    return value


DistName = Annotated[str, AfterValidator(_dist_name)]


class NixlPin(SourcePin):
    meson_options: dict[MesonOption, MesonValue] = Field(
        default_factory=lambda: {"wheel_variant": "rocm", "build_tests": "false", "build_examples": "false"},
        description="-D options for NIXL's meson (besides ucx_path, which is the ucx component's install_prefix); "
        "the default is the reference's (docker/Dockerfile.rocm@00305ee5, build_nixl).")
    wheel_name: DistName = Field(
        "nixl-rocm", description="The distribution name the wheel is built under (contrib/tomlutil.py "
        "--wheel-name), as the reference's nixl-rocm.")
    build_packages: list[AptPackage] = Field(
        default_factory=lambda: ["libgrpc-dev", "libgrpc++-dev", "libprotobuf-dev", "protobuf-compiler-grpc",
                                 "libcpprest-dev", "libaio-dev"],
        description="apt packages the nixl stage installs before its build (the reference's apt list for NIXL).")


def ucx_prefix(stage: StageInput) -> str:
    ucx = stage.pins.get("ucx")
    if ucx is None:
        raise ComponentError("nixl builds against UCX: the matrix must pin components.ucx too")
    return str(ucx.install_prefix)  # type: ignore[attr-defined]


def context(stage: StageInput) -> dict[str, Any]:
    pin = stage.pin
    assert isinstance(pin, NixlPin)
    return {"ucx_prefix": ucx_prefix(stage), "wheel_name": pin.wheel_name,
            "options": [shlex.quote(f"-Csetup-args=-D{k}={v}") for k, v in pin.meson_options.items()],
            "packages": [shlex.quote(p) for p in pin.build_packages],
            "apt_update": apt_update(stage.cell["base.apt_valid_until"])}


def record(pin: SourcePin) -> dict[str, Any]:
    assert isinstance(pin, NixlPin)
    return {"wheel_name": pin.wheel_name, "wheel_variant": pin.meson_options.get("wheel_variant", "cu12")}


def interface(stage: StageInput) -> Interface:
    pin = stage.pin
    assert isinstance(pin, NixlPin)
    uses = [Use("file", "contrib/tomlutil.py", "the nixl stage"),
            Use("file", "contrib/wheel_add_ucx_plugins.py", "the nixl stage"),
            Use("meson", "ucx_path", "components.ucx.install_prefix")]
    uses += [Use("meson", name, f"components.nixl.meson_options.{name}") for name in pin.meson_options]
    return Interface(uses, readers=("meson.build", "meson_options.txt"))


COMPONENT = Component(
    name="nixl",
    pin=NixlPin,
    context=context,
    output=Wheel(("nixl-rocm", "nixl")),
    after=("ucx",),
    uses=("base.apt_valid_until",),
    required=False,
    record=record,
    interface=interface,
    # NIXL has no requirements file: its wheelhouse is pyproject.toml's [build-system] requires.
    build_requirements=("pyproject.toml",),
    folder=Path(__file__).resolve().parent,
)
