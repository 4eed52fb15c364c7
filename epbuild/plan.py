"""What one cell builds: the cell, the matrix it comes from, and the cell facts its stages are rendered from."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from epbuild.cells import Cell
from epbuild.component import Registry
from epbuild.matrix import ArchInfo, BaseSettings, MatrixBase, NicInfo
from epbuild.pins import SourcePin


@dataclass(frozen=True)
class CellPlan:
    cell: Cell
    matrix: MatrixBase
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What other modules derive from the plan once (the stage graph's stages for the cell): a 1,000-cell render
    asks for them thousands of times."""

    @property
    def registry(self) -> Registry:
        return self.matrix.registry

    @property
    def nic(self) -> NicInfo:
        return self.matrix.nics[self.cell.nic]

    @property
    def base(self) -> BaseSettings:
        return self.matrix.bases[self.cell.base]

    @property
    def archs(self) -> dict[str, ArchInfo]:
        return {arch: self.matrix.archs[arch] for arch in self.cell.archs}

    @cached_property
    def pins(self) -> dict[str, SourcePin]:
        return self.matrix.components.pins()

    @property
    def local_tag(self) -> str:
        return f"{self.matrix.image.name}:{self.cell.name}"

    @cached_property
    def facts(self) -> dict[str, Any]:
        """Everything about the cell a stage's text may depend on, by the name a stage spec's `uses` and `when`
        give it. (`nic.flag` is filled per component from nics.<nic>.flags.)"""
        nic, base = self.nic, self.base
        return {
            "cell": self.cell.name,
            "arch": self.cell.arch,
            "archs": self.cell.archs,
            "gpu_targets": self.cell.gpu_targets,
            "nic": self.cell.nic,
            "nic.provider": nic.provider,
            "nic.provider_library": nic.provider_library,
            "nic.rdma_core": nic.rdma_core,
            "nic.vendor_packages": tuple(nic.vendor_packages),
            "base": self.cell.base,
            "base.image": base.image,
            "base.rocm_path": base.rocm_path,
            "base.build_packages": tuple(base.build_packages),
        }

    def facts_for(self, component: str) -> dict[str, Any]:
        return {**self.facts, "nic.flag": self.nic.flags.get(component)}
