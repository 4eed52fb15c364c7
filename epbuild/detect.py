"""Reads the host's GPU arch and NIC from sysfs, for `invoke pull --detect` and the GPU tier.

GPU: the KFD topology (/sys/class/kfd/kfd/topology/nodes/*/properties) gives each GPU node's
gfx_target_version, e.g. 90402 -> gfx942, 90500 -> gfx950 (CPU nodes report 0).
NIC: the PCI vendor of every RDMA device (/sys/class/infiniband/*/device/vendor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from epbuild.errors import EpbuildError

NIC_BY_VENDOR = {"0x15b3": "cx7", "0x1dd8": "io", "0x14e4": "thor2"}
VENDOR_NAMES = {"0x15b3": "Mellanox/NVIDIA", "0x1dd8": "AMD Pensando", "0x14e4": "Broadcom"}


def gfx_name(version: int) -> str:
    """KFD's gfx_target_version: major*10000 + minor*100 + stepping, the last two printed in hex."""
    major, minor, stepping = version // 10000, (version // 100) % 100, version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def kfd_gfx_targets(sysfs: Path) -> list[str]:
    targets = []
    for props in sorted((sysfs / "class" / "kfd" / "kfd" / "topology" / "nodes").glob("*/properties")):
        for line in props.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "gfx_target_version" and value.strip().isdigit() and int(value) > 0:
                targets.append(gfx_name(int(value)))
    return targets


def rdma_vendors(sysfs: Path) -> dict[str, str]:
    out = {}
    for vendor in sorted((sysfs / "class" / "infiniband").glob("*/device/vendor")):
        out[vendor.parent.parent.name] = vendor.read_text().strip().lower()
    return out


@dataclass(frozen=True)
class Detected:
    arch: str
    nic: str
    report: str


def detect(sysfs: Path) -> Detected:
    """The single cell this host matches, or an error saying what was found and asking for --arch/--nic."""
    gpus = kfd_gfx_targets(sysfs)
    devices = rdma_vendors(sysfs)
    seen = [f"GPUs: {', '.join(gpus) or 'none'}",
            "RDMA devices: " + (", ".join(f"{d} ({VENDOR_NAMES.get(v, v)})" for d, v in devices.items()) or "none")]
    report = "; ".join(seen)
    archs = sorted(set(gpus))
    nics = sorted({NIC_BY_VENDOR[v] for v in devices.values() if v in NIC_BY_VENDOR})
    if not archs:
        raise EpbuildError(f"found no AMD GPU in {sysfs}/class/kfd ({report}); name the cell with --arch and --nic")
    if len(archs) > 1 or len(nics) != 1:
        what = "several GPU archs" if len(archs) > 1 else ("no supported RDMA NIC" if not nics else "several NIC kinds")
        raise EpbuildError(f"cannot pick one cell: {what} ({report}); name the cell with --arch and --nic")
    return Detected(archs[0], nics[0], report)
