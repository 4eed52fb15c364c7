"""Where epbuild's own files are: the repository when it runs from a checkout (invoke in the repository root),
the package data of an installed `epbuild` otherwise (pyproject.toml copies them to epbuild/_data, laid out
as in the repository)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
CHECKOUT = PACKAGE.parent
INSTALLED = PACKAGE / "_data"


def from_checkout() -> bool:
    """True when this package is the one in a repository checkout (not a copy under site-packages)."""
    return (CHECKOUT / "tasks.py").is_file() and (CHECKOUT / "templates").is_dir()


def resource(relative: str) -> Path:
    """A project file by its path in the repository, e.g. `templates` or `epbuild/checks/image`."""
    return (CHECKOUT if from_checkout() else INSTALLED) / relative


def project_root() -> Path:
    """The folder builds run from (build/ keeps caches and logs there): the checkout, or for an installed
    `epbuild` the current folder."""
    return CHECKOUT if from_checkout() else Path.cwd()
