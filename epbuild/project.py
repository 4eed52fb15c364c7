"""Where things are: the project root builds run from, and the matrix a command names."""

from __future__ import annotations

from pathlib import Path

from epbuild.matrix import LoadedMatrix, load_matrix
from epbuild.render import Rendering, render_matrix
from epbuild.resources import project_root

ROOT = project_root()
DEFAULT_MATRIX = "matrix.yaml"


def matrix_path(path: str) -> Path:
    """A path given on the command line: relative paths mean the current folder, as in any command."""
    return Path(path).expanduser().absolute()


def load(path: str = DEFAULT_MATRIX) -> LoadedMatrix:
    return load_matrix(matrix_path(path))


def rendering(path: str = DEFAULT_MATRIX) -> Rendering:
    return render_matrix(load(path), ROOT)
