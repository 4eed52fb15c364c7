"""Expands the matrix axes into cells: the product of the axes (arch x NIC x base), minus `exclude`, plus
`include`; and picks the cells a command line names."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any, Protocol

from epbuild.model.patterns import split_arch
from epbuild.util.errors import EpbuildError
from epbuild.util.memo import memoized


@dataclass(frozen=True, order=True)
class Cell:
    """One image of the matrix: an arch axis value (maybe fat, 'gfx942+gfx950'), a NIC and a base. `base_in_name`:
    the matrix has several bases, so the name says which."""

    arch: str
    nic: str
    base: str
    base_in_name: bool = False

    # Cached (in the instance's __dict__, which the frozen dataclass's fields, equality and hash leave out): a
    # render asks a cell for its name and archs a dozen times.
    @memoized
    def archs(self) -> tuple[str, ...]:
        return split_arch(self.arch)

    @memoized
    def arch_slug(self) -> str:
        # '+' is not valid in docker tags, bake target names or portable folder names.
        return "_".join(self.archs)

    @memoized
    def name(self) -> str:
        """`<arch>-<nic>` (`<arch>-<nic>-<base>` with several bases): a docker tag, a bake target and a folder
        name at once."""
        return f"{self.arch_slug}-{self.nic}" + (f"-{self.base}" if self.base_in_name else "")

    @memoized
    def gpu_targets(self) -> str:
        """The arch list as CMake's GPU_TARGETS and PYTORCH_ROCM_ARCH spell it."""
        return ";".join(self.archs)


class _Selector(Protocol):
    arch: str | None
    nic: str | None
    base: str | None


def canonical_arch(value: str) -> str:
    """One spelling per fat arch: 'gfx950+gfx942' and 'gfx942+gfx950' build the same image, so they are one cell."""
    return "+".join(sorted(set(split_arch(value))))


def matches(selector: _Selector, cell: Cell) -> bool:
    return ((selector.arch is None or canonical_arch(selector.arch) == cell.arch)
            and (selector.nic is None or selector.nic == cell.nic)
            and (selector.base is None or selector.base == cell.base))


def expand(matrix: Any) -> list[Cell]:
    """GitHub-Actions-like: the axes' product, without cells an exclude matches, then each include added once
    (an include without a base adds its cell on every base)."""
    bases = matrix.base_names
    several = len(bases) > 1
    cells = [c for c in _product(matrix) if not any(matches(sel, c) for sel in matrix.exclude)]
    for sel in matrix.include:
        for base in [sel.base] if sel.base else bases:
            extra = Cell(canonical_arch(sel.arch), sel.nic, base, several)
            if not any(c.name == extra.name for c in cells):
                cells.append(extra)
    return cells


def _product(matrix: Any) -> list[Cell]:
    bases = matrix.base_names
    return [Cell(canonical_arch(a), n, b, len(bases) > 1)
            for a, n, b in product(matrix.axes.arch, matrix.axes.nic, bases)]


def excluded(matrix: Any) -> list[Cell]:
    """The cells of the axes' product that `exclude` removes and no `include` adds back."""
    kept = {c.name for c in expand(matrix)}
    return [c for c in _product(matrix) if c.name not in kept]


def select(cells: list[Cell], archs: list[str], nics: list[str], *, everything: bool,
           names: list[str] | None = None, bases: list[str] | None = None,
           excluded: list[Cell] | None = None) -> list[Cell]:
    """The cells a command line asks for: `--all`; or every cell matching one of the --arch, one of the --nic and
    one of the --base given, plus each `--cell NAME`. `excluded` (the matrix's excluded cells) lets an error name
    a cell as excluded."""
    names, bases = names or [], bases or []
    if everything:
        return list(cells)
    if not archs and not nics and not bases and not names:
        raise EpbuildError("name the cells: --arch ARCH --nic NIC [--base BASE] (each repeatable), --cell NAME, "
                           "or --all")
    excluded = excluded or []
    known = ", ".join(c.name for c in cells)
    unknown = [n for n in names if n not in {c.name for c in cells}]
    if unknown:
        dropped = [n for n in unknown if n in {c.name for c in excluded}]
        if dropped:
            raise EpbuildError(f"cell {', '.join(dropped)} is excluded by the matrix's `exclude`; the cells are: {known}")
        raise EpbuildError(f"no cell named {', '.join(unknown)}; the cells are: {known}")
    wanted_archs = {canonical_arch(a.replace("_", "+")) for a in archs}

    def by_axes(c: Cell) -> bool:
        return (bool(archs or nics or bases) and (not archs or c.arch in wanted_archs)
                and (not nics or c.nic in nics) and (not bases or c.base in bases))

    chosen = [c for c in cells if by_axes(c) or c.name in names]
    dropped = [c.name for c in excluded if by_axes(c)]
    if not chosen and dropped:
        raise EpbuildError(f"cell {', '.join(dropped)} is excluded by the matrix's `exclude`; the cells are: {known}")
    if not chosen:
        raise EpbuildError(
            f"no cell of the matrix matches --arch {' '.join(archs) or '(any)'} --nic {' '.join(nics) or '(any)'}"
            f" --base {' '.join(bases) or '(any)'}; the cells are: {known}"
        )
    return chosen
