"""What one cell builds: the cell, the matrix it comes from, and the cell facts its stages are rendered from."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from epbuild.model.cells import Cell
from epbuild.model.component import Registry
from epbuild.model.matrix import MatrixBase
from epbuild.model.pins import SourcePin
from epbuild.model.sections import ArchInfo, BaseSettings, NicInfo
from epbuild.model.vendor import VendorUserspace
from epbuild.util.memo import memoized


@dataclass(frozen=True)
class CellPlan:
    cell: Cell
    matrix: MatrixBase
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What other modules derive from the plan once (the stage graph's stages for the cell): a 1,000-cell render
    asks for them thousands of times."""

    @memoized
    def shared(self) -> dict[Any, Any]:
        """What the cells of one matrix derive once between them (epbuild.render.dockerfiles's stage texts): see matrix_memo."""
        return matrix_memo(self.matrix)

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

    @memoized
    def pins(self) -> dict[str, SourcePin]:
        if "pins" not in self.shared:  # every cell of a matrix has its pins (read-only)
            self.shared["pins"] = self.matrix.components.pins()
        return self.shared["pins"]

    @property
    def local_tag(self) -> str:
        return f"{self.matrix.image.name}:{self.cell.name}"

    @memoized
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
            # The vendor userspace by its digest (the `vendor` stage's text and .debs follow from it), or None.
            "nic.vendor": self.vendor_digest,
            "base": self.cell.base,
            "base.image": base.image,
            "base.rocm_path": base.rocm_path,
            "base.build_packages": tuple(base.build_packages),
            "base.apt_valid_until": base.apt_valid_until,
        }

    @property
    def vendor_digest(self) -> str | None:
        """The digest of the NIC's vendor userspace (VendorUserspace.digest), computed once per NIC and matrix."""
        key = ("vendor-digest", self.cell.nic)
        if key not in self.shared:
            self.shared[key] = self.vendor.digest() if self.vendor else None
        return self.shared[key]

    @property
    def vendor(self) -> VendorUserspace | None:
        """The NIC's vendor userspace, or None where the NIC says `vendor: none`."""
        return self.nic.vendor

    def vendor_build(self, component: str) -> str | None:
        """What the component's build takes from the NIC's vendor userspace (its spec's `vendor_build`), or None
        where the NIC has none or the build needs none."""
        key = f"vendor_build:{component}"
        if key not in self.memo:
            found = None
            if component in self.pins and self.vendor is not None:
                found = self.registry[component].vendor_build(self.pins[component], self.facts)
            self.memo[key] = found
        return self.memo[key]

    def fact(self, component: str | None, name: str) -> Any:
        """facts_for(component).get(name) (facts.get(name) without a component), without building the dict."""
        if component is not None and name == "nic.flag":
            return self.nic.flags.get(component)
        if component is not None and name == "nic.vendor_build":
            return self.vendor_build(component)
        return self.facts.get(name)

    def facts_for(self, component: str) -> dict[str, Any]:
        """The cell facts plus the component's own: `nic.flag` (nics.<nic>.flags.<component>) and
        `nic.vendor_build` (see vendor_build)."""
        return {**self.facts, "nic.flag": self.nic.flags.get(component), "nic.vendor_build": self.vendor_build(component)}


_MATRIX_MEMOS: dict[int, dict[Any, Any]] = {}


def matrix_memo(matrix: MatrixBase) -> dict[Any, Any]:
    """One memo per matrix object, dropped with it. Sound because a matrix is frozen (its pins and facts never
    change): whatever is derived from it once holds for its lifetime. Keyed by id() since a matrix (holding dicts)
    is not hashable; the entry is removed when the matrix is collected, before its id can be reused."""
    key = id(matrix)
    memo = _MATRIX_MEMOS.get(key)
    if memo is None:
        memo = _MATRIX_MEMOS[key] = {}
        weakref.finalize(matrix, _MATRIX_MEMOS.pop, key, None)
    return memo
