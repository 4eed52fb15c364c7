"""What a component's stage passes to the component's source (flags, environment variables, CMake or meson
options, files), each with the matrix key that asked for it: declared by the component, checked by preflight at
the pin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["flag", "env", "cmake", "meson", "file"]


@dataclass(frozen=True)
class Use:
    """One thing a stage passes to its component, and the matrix key (or axis) that asked for it."""

    kind: Kind
    name: str
    key: str
    value: str | None = None
    """For a flag with `choices`: the value passed, which must be one of them."""


@dataclass(frozen=True)
class Interface:
    """What a stage relies on in its component's source (paths relative to the component's folder)."""

    uses: list[Use]
    parser: str | None = None
    """The script whose argparse options the flags must be (DeepEP's setup.py)."""
    readers: tuple[str, ...] = ()
    """Files (globs) of which at least one must name each environment variable, CMake and meson option."""
    forwards_unknown: bool = True
    """The script hands unknown flags on to setuptools, which rejects them (so an unknown flag is an error)."""
