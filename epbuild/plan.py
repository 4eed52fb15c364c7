"""What one cell builds: the cell, the matrix it comes from, and the facts its stages are rendered from."""

from __future__ import annotations

from dataclasses import dataclass

from epbuild.cells import Cell
from epbuild.matrix import Matrix, NicInfo, SourcePin


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
    def pins(self) -> dict[str, SourcePin]:
        return self.matrix.components.pins()

    @property
    def local_tag(self) -> str:
        return f"{self.matrix.image.name}:{self.cell.name}"
