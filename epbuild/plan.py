"""What one cell builds: the cell, the matrix it comes from, and the facts its stages are rendered from."""

from __future__ import annotations

from dataclasses import dataclass

from epbuild.cells import Cell
from epbuild.matrix import Matrix, NicInfo, SourcePin
from epbuild.vendor import VendorUserspace


@dataclass(frozen=True)
class CellPlan:
    cell: Cell
    matrix: Matrix

    @property
    def nic(self) -> NicInfo:
        return self.matrix.nics[self.cell.nic]

    @property
    def rdma_core_from_source(self) -> bool:
        return self.nic.rdma_core == "source"

    @property
    def vendor(self) -> VendorUserspace | None:
        """The NIC's vendor userspace, or None where the NIC says `vendor: none`."""
        return self.nic.vendor

    @property
    def mori_vendor_flag(self) -> str | None:
        """The flag that compiles this NIC's vendor library into MoRI, where the pinned MoRI does that at build
        time (MoRI is then built on the vendor userspace, per NIC); None where its build is NIC-independent."""
        mori = self.matrix.components.mori
        if mori is None or self.vendor is None:
            return None
        return mori.nic_build_flags.get(self.nic.provider)

    @property
    def pins(self) -> dict[str, SourcePin]:
        return self.matrix.components.pins()

    @property
    def local_tag(self) -> str:
        return f"{self.matrix.image.name}:{self.cell.name}"
