"""Where things are: the project root builds run from, and the default matrix."""

from __future__ import annotations

from pathlib import Path

from epbuild.matrix import LoadedMatrix, load_matrix
from epbuild.render import Rendering, render_matrix

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MATRIX = "matrix.yaml"


def matrix_path(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def load(path: str = DEFAULT_MATRIX) -> LoadedMatrix:
    return load_matrix(matrix_path(path))


def rendering(path: str = DEFAULT_MATRIX) -> Rendering:
    return render_matrix(load(path), ROOT)
