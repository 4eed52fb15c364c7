"""rdma-core: built from source where the NIC says so (nics.<nic>.rdma_core: source); identical in all those
cells. Its install is the starting point of the stages after it and of `final`, so it is installed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from epbuild.model.component import Component, StageInput, System
from epbuild.model.interface import Interface, Use
from epbuild.model.patterns import AptPackage
from epbuild.model.pins import SourcePin


class RdmaCorePin(SourcePin):
    replaces_packages: list[AptPackage] = Field(
        default_factory=lambda: ["ibverbs-providers", "ibverbs-utils", "libibverbs-dev", "libibverbs1",
                                 "librdmacm-dev", "librdmacm1", "rdmacm-utils", "rdma-core"],
        description="Distribution packages the source build replaces (purged where installed).",
    )


def release(tag: str | None) -> str | None:
    """rdma-core's libraries end in the release number of the tag: v62.0 installs libibverbs.so.1.X.62.0."""
    if tag and tag.startswith("v") and tag[1:].replace(".", "").isdigit():
        return tag[1:]
    return None


def interface(stage: StageInput) -> Interface:
    return Interface([Use("cmake", "NO_MAN_PAGES", "the rdma-core stage"),
                      Use("cmake", "NO_PYVERBS", "the rdma-core stage")], readers=("CMakeLists.txt",))


def context(stage: StageInput) -> dict[str, Any]:
    return {"replaces": stage.pin.replaces_packages}


COMPONENT = Component(
    name="rdma-core",
    pin=RdmaCorePin,
    context=context,
    output=System(),
    when={"nic.rdma_core": "source"},
    record=lambda pin: {"release": release(pin.tag)},
    interface=interface,
    folder=Path(__file__).resolve().parent,
)
