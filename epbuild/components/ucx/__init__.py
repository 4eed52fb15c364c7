"""UCX: the transport library NIXL drives, built with autotools and installed under its prefix on top of the cell's
NIC userspace (the vendor's where the NIC has one, rdma-core's source build where it applies, else the base's), so
its verbs transport links the libibverbs the cell pinned; `final` copies the prefix. vLLM's reference builds it in
its `build_nixl` stage (docker/Dockerfile.rocm@00305ee5)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from epbuild.model.component import Component, Copy, StageInput, apt_update
from epbuild.model.interface import Interface, Use
from epbuild.model.patterns import AbsPath, AptPackage
from epbuild.model.pins import SourcePin

CONFIGURE_FLAG = re.compile(r"^--[a-z][a-z0-9-]*(=[A-Za-z0-9_./+,-]+)?$")
SET_BY_THE_STAGE = ("--prefix", "--with-rocm")
"""The stage passes these itself: the prefix from install_prefix, ROCm from the base's ROCM_PATH."""


def _configure_flag(value: str) -> str:
    if not CONFIGURE_FLAG.match(value):
        raise ValueError(f"{value!r} is not a configure option: expected --name or --name=value (value of letters, "
                         "digits and _ . / + , -)")
    if value.split("=", 1)[0] in SET_BY_THE_STAGE:
        raise ValueError(f"{value!r}: the stage sets {', '.join(SET_BY_THE_STAGE)} itself (install_prefix, and the "
                         "base's rocm_path)")
    return value


ConfigureFlag = Annotated[str, AfterValidator(_configure_flag)]


class UcxPin(SourcePin):
    install_prefix: AbsPath = "/usr/local/ucx"
    configure_flags: list[ConfigureFlag] = Field(
        default_factory=lambda: ["--enable-shared", "--disable-static", "--disable-doxygen-doc",
                                 "--enable-optimizations", "--enable-devel-headers", "--with-verbs", "--with-dm",
                                 "--enable-mt"],
        description="Options for UCX's configure besides --prefix and --with-rocm (which the stage sets); the "
        "default is what vLLM's reference passes (docker/Dockerfile.rocm@00305ee5, build_nixl).")
    build_packages: list[AptPackage] = Field(
        default_factory=lambda: ["autoconf", "automake", "libtool", "pkg-config"],
        description="apt packages the ucx stage installs before its build (autogen.sh runs autoreconf and "
        "libtoolize); the verbs headers come from the stage below it (rdma-core, vendor or base).")

    @field_validator("configure_flags")
    @classmethod
    def _verbs_requested(cls, flags: list[str]) -> list[str]:
        # The image checks expect the verbs transports on every NIC: a build without them is a different stack.
        if not any(f == "--with-verbs" or f.startswith("--with-verbs=") for f in flags):
            raise ValueError("must hold --with-verbs: NIXL moves KV caches over RDMA, so UCX must build its verbs "
                             "transports")
        return flags


def interface(stage: StageInput) -> Interface:
    return Interface([Use("file", "autogen.sh", "the ucx stage"),
                      Use("file", "configure.ac", "the ucx stage (autogen.sh makes configure from it)")],
                     readers=("autogen.sh", "configure.ac", "config/m4/*.m4"))


def context(stage: StageInput) -> dict[str, Any]:
    pin = stage.pin
    assert isinstance(pin, UcxPin)
    return {"prefix": pin.install_prefix, "flags": [shlex.quote(f) for f in pin.configure_flags],
            "packages": [shlex.quote(p) for p in pin.build_packages],
            "apt_update": apt_update(stage.cell["base.apt_valid_until"])}


def record(pin: SourcePin) -> dict[str, Any]:
    assert isinstance(pin, UcxPin)
    return {"configure_flags": list(pin.configure_flags)}


COMPONENT = Component(
    name="ucx",
    pin=UcxPin,
    context=context,
    output=Copy(("{install_prefix}",)),
    # On the NIC's userspace, so that its verbs transport links the libibverbs the cell pinned.
    after=("vendor",),
    uses=("base.apt_valid_until",),
    required=False,
    record=record,
    interface=interface,
    folder=Path(__file__).resolve().parent,
)
