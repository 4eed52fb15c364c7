"""Reads the host's GPU arch, NIC and ROCm release, for `invoke pull --detect` and the GPU tier; which values
they map to comes from the matrix (archs.<arch>, nics.<nic>.pci_vendors, bases.<base>.rocm_version).

GPU: the KFD topology (/sys/class/kfd/kfd/topology/nodes/*/properties) gives each GPU node's
gfx_target_version, e.g. 90402 -> gfx942, 90500 -> gfx950 (CPU nodes report 0).
NIC: the PCI vendor of every RDMA device (/sys/class/infiniband/*/device/vendor).
ROCm: /opt/rocm/.info/version (e.g. 7.2.1-43), where the host has ROCm installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epbuild.util.errors import EpbuildError

ROCM_VERSION_FILE = Path("/opt/rocm/.info/version")


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


def host_rocm_version(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text.split("-", 1)[0] or None


@dataclass(frozen=True)
class Detected:
    arch: str
    nic: str
    base: str | None
    report: str


def _base(matrix: Any, rocm: str | None) -> str | None:
    """The base whose rocm_version the host's ROCm release starts with; None when the matrix has one base or the
    host's ROCm cannot be read (then every base stays selected)."""
    names = matrix.base_names
    if len(names) == 1:
        return names[0]
    if rocm is None:
        return None
    fits = [n for n in names if matrix.bases[n].rocm_version and
            (rocm + ".").startswith(matrix.bases[n].rocm_version + ".")]
    if len(fits) != 1:
        raise EpbuildError(f"cannot pick one base for the host's ROCm {rocm}: bases "
                           + ", ".join(f"{n} (rocm_version {matrix.bases[n].rocm_version or 'unset'})" for n in names)
                           + "; name it with --base")
    return fits[0]


def detect(sysfs: Path, matrix: Any, rocm_version_file: Path = ROCM_VERSION_FILE) -> Detected:
    """The single cell this host matches, or an error saying what was found and asking for --arch/--nic."""
    gpus = kfd_gfx_targets(sysfs)
    devices = rdma_vendors(sysfs)
    by_vendor: dict[str, list[str]] = {}
    for nic, info in matrix.nics.items():
        for vendor in info.pci_vendors:
            by_vendor.setdefault(vendor, []).append(nic)
    rocm = host_rocm_version(rocm_version_file)

    def who(vendor: str) -> str:
        nics = by_vendor.get(vendor, [])
        return ", ".join(matrix.nics[n].description or n for n in nics) or vendor

    seen = [f"GPUs: {', '.join(gpus) or 'none'}",
            "RDMA devices: " + (", ".join(f"{d} ({who(v)})" for d, v in devices.items()) or "none")]
    if rocm:
        seen.append(f"ROCm {rocm}")
    report = "; ".join(seen)
    archs = sorted(set(gpus))
    candidates = sorted({n for v in devices.values() for n in by_vendor.get(v, [])})
    in_axes = [n for n in candidates if n in matrix.axes.nic]
    nics = in_axes if len(candidates) > 1 and in_axes else candidates
    if not archs:
        raise EpbuildError(f"found no AMD GPU in {sysfs}/class/kfd ({report}); name the cell with --arch and --nic")
    if len(archs) > 1 or len(nics) != 1:
        what = "several GPU archs" if len(archs) > 1 else ("no supported RDMA NIC" if not nics else "several NIC kinds")
        raise EpbuildError(f"cannot pick one cell: {what} ({report}); name the cell with --arch and --nic")
    return Detected(archs[0], nics[0], _base(matrix, rocm), report)
