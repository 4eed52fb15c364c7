"""Expands the matrix axes into cells: the product of the axes, minus `exclude`, plus `include`."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING

from epbuild.patterns import split_arch

if TYPE_CHECKING:
    from epbuild.matrix import CellSelector, Matrix


@dataclass(frozen=True, order=True)
class Cell:
    """One image of the matrix: an arch axis value (maybe fat, 'gfx942+gfx950') and a NIC."""

    arch: str
    nic: str

    @property
    def archs(self) -> tuple[str, ...]:
        return split_arch(self.arch)

    @property
    def arch_slug(self) -> str:
        # '+' is not valid in docker tags, bake target names or portable folder names.
        return "_".join(self.archs)

    @property
    def name(self) -> str:
        """`<arch>-<nic>`: a docker tag, a bake target and a folder name at once."""
        return f"{self.arch_slug}-{self.nic}"

    @property
    def gpu_targets(self) -> str:
        """The arch list as CMake's GPU_TARGETS and PYTORCH_ROCM_ARCH spell it."""
        return ";".join(self.archs)


def _matches(selector: CellSelector, cell: Cell) -> bool:
    return (selector.arch is None or split_arch(selector.arch) == cell.archs) and (
        selector.nic is None or selector.nic == cell.nic
    )


def expand(matrix: Matrix) -> list[Cell]:
    """GitHub-Actions-like: the axes' product, without cells an exclude matches, then each include added once."""
    cells = [Cell(a, n) for a, n in product(matrix.axes.arch, matrix.axes.nic)]
    cells = [c for c in cells if not any(_matches(sel, c) for sel in matrix.exclude)]
    for sel in matrix.include:
        assert sel.arch is not None and sel.nic is not None  # cross_check guarantees it
        extra = Cell(sel.arch, sel.nic)
        if not any(c.name == extra.name for c in cells):
            cells.append(extra)
    return cells


def select(cells: list[Cell], archs: list[str], nics: list[str], *, everything: bool,
           names: list[str] | None = None) -> list[Cell]:
    """The cells a command line asks for: `--all`; or every cell matching one of the --arch and one of the --nic,
    plus each `--cell NAME`."""
    from epbuild.errors import EpbuildError

    names = names or []
    if everything:
        return list(cells)
    if not archs and not nics and not names:
        raise EpbuildError("name the cells: --arch ARCH --nic NIC (each repeatable), --cell NAME, or --all")
    unknown = [n for n in names if n not in {c.name for c in cells}]
    if unknown:
        raise EpbuildError(f"no cell named {', '.join(unknown)}; the cells are: {', '.join(c.name for c in cells)}")
    wanted_archs = {split_arch(a.replace("_", "+")) for a in archs}
    by_axes = [c for c in cells if (archs or nics) and (not archs or c.archs in wanted_archs)
               and (not nics or c.nic in nics)]
    chosen = [c for c in cells if c in by_axes or c.name in names]
    if not chosen:
        known = ", ".join(c.name for c in cells)
        raise EpbuildError(
            f"no cell of the matrix matches --arch {' '.join(archs) or '(any)'} --nic {' '.join(nics) or '(any)'}; "
            f"the cells are: {known}"
        )
    return chosen
