"""rocSHMEM: the all_backends build for the cell's archs, on top of the cell's NIC userspace (the vendor's where
the NIC has one, rdma-core's source build where it applies, else the base's); `final` copies its install prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field

from epbuild.model.component import Component, Copy, StageInput
from epbuild.model.interface import Interface, Use
from epbuild.model.nic_offer import NicOffer
from epbuild.model.patterns import AbsPath, RelPath
from epbuild.model.pins import SourcePin


class RocshmemPin(SourcePin):
    path: RelPath = Field("projects/rocshmem", description="Folder of rocSHMEM inside the repository (sparse).")
    install_prefix: AbsPath = "/opt/rocshmem"


SCRIPT = "scripts/build_configs/all_backends"
FUNCTIONAL_TESTER = "rocshmem_functional_tests"
"""The functional tests all_backends builds (BUILD_FUNCTIONAL_TESTS): one program, installed under the prefix."""
FUNCTIONAL_TESTER_DIRS = ("share/rocshmem", "bin")
"""Where the pin's `cmake --install` puts the tester: ${CMAKE_INSTALL_DATADIR}/rocshmem at rocm-systems f45ffe99,
${CMAKE_INSTALL_BINDIR} at 03111e1c (projects/rocshmem/tests/functional_tests/CMakeLists.txt)."""
FUNCTIONAL_DRIVER = "share/rocshmem/rocshmem_functional_driver.sh"
"""scripts/functional_tests/driver.sh as the pin installs it (same file, @f45ffe99 and @03111e1c): how upstream
runs the functional tests, `<driver> <tester> <suite> <log dir>`."""


def interface(stage: StageInput) -> Interface:
    return Interface([Use("file", SCRIPT, "the rocshmem stage"),
                      Use("env", "INSTALL_PREFIX", "components.rocshmem.install_prefix"),
                      Use("cmake", "GPU_TARGETS", f"axes.arch ({stage.cell['gpu_targets']})"),
                      Use("cmake", "USE_EXTERNAL_MPI", "the rocshmem stage (OFF, as the reference)")],
                     readers=(SCRIPT, "CMakeLists.txt", "cmake/*.cmake", "cmake/**/*.cmake"))


GDA_ON = re.compile(r"-D(GDA_[A-Z0-9_]+)=ON\b")


def nic_support(pin: SourcePin, tree: Path) -> NicOffer | None:
    """The GPU-direct-async backends scripts/build_configs/all_backends turns on at the pin (`-DGDA_MLX5=ON` ...,
    rocm-systems projects/rocshmem, read at b88eb1c7 and 0a1aa2a9)."""
    assert isinstance(pin, RocshmemPin)
    script = tree / pin.path / SCRIPT
    if not script.is_file():
        return None
    return NicOffer("flag", frozenset(GDA_ON.findall(script.read_text(errors="replace"))),
                    f"{SCRIPT} at {pin.commit[:12]}")


def context(stage: StageInput) -> dict[str, Any]:
    pin = stage.pin
    return {"path": pin.path, "prefix": pin.install_prefix, "gpu_targets": stage.cell["gpu_targets"]}


COMPONENT = Component(
    name="rocshmem",
    pin=RocshmemPin,
    context=context,
    output=Copy(("{install_prefix}",)),
    # On the NIC's vendor userspace where it has one (its GDA backends load the vendor's library), else rdma-core's
    # source build where it applies, else the base.
    after=("vendor",),
    uses=("gpu_targets",),
    # The GPU-direct-async backends scripts/build_configs/all_backends turns on (GDA with MLX5, BNXT and IONIC at
    # f0acb0c6, docs/upstream.md); each NIC names the one it needs in nics.<nic>.flags.rocshmem, and the image
    # check finds it in the library. The stage builds them all, so the value changes no stage.
    nic_flag=("GDA_MLX5", "GDA_IONIC", "GDA_BNXT"),
    sparse_path="path",
    interface=interface,
    nic_support=nic_support,
    folder=Path(__file__).resolve().parent,
)
