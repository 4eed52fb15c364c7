"""Where things are: the project root builds run from, the matrix a command names, and the cells it selects."""

from __future__ import annotations

from pathlib import Path

from epbuild.model.cells import excluded, select
from epbuild.model.matrix import LoadedMatrix, load_matrix
from epbuild.render.dockerfiles import RenderedCell, Rendering, render_matrix
from epbuild.util.resources import project_root

ROOT = project_root()
DEFAULT_MATRIX = "matrix.yaml"


def matrix_path(path: str) -> Path:
    """A path given on the command line: relative paths mean the current folder, as in any command."""
    return Path(path).expanduser().absolute()


def load(path: str = DEFAULT_MATRIX) -> LoadedMatrix:
    return load_matrix(matrix_path(path))


def rendering(path: str = DEFAULT_MATRIX) -> Rendering:
    return render_matrix(load(path), ROOT)


def selected(path: str, archs: list[str], nics: list[str], *, everything: bool = False, names: list[str] | None = None,
             bases: list[str] | None = None) -> tuple[Rendering, list[RenderedCell]]:
    """The matrix's rendering and the cells a command line selects (epbuild.model.cells.select), in matrix order."""
    r = rendering(path)
    chosen = {c.name for c in select([rc.cell for rc in r.cells], archs, nics, everything=everything,
                                     names=names or [], bases=bases or [], excluded=excluded(r.matrix.model))}
    return r, [rc for rc in r.cells if rc.cell.name in chosen]
