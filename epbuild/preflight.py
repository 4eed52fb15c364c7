"""Preflight: after the sources are fetched and before any build starts, every flag, environment variable, CMake
option and file a stage will hand to a component is checked against that component's source at its pin.

Why: DeepEP's setup.py forwards the arguments its parser does not know to setuptools (`sys.argv = [sys.argv[0]] +
unknown_args`, ROCm/DeepEP setup.py@a9ea9774), which stops with `error: option --X not recognized`, and the
options differ between commits (`--rocm-explicit-ctx` is missing at 5d90af8b, `--rocm-gfx942-fp8-fnuz-max` at
a9ea9774). Such a mismatch must fail in a second, naming the matrix key, not after an hour of rocSHMEM.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from epbuild.errors import EpbuildError

Kind = Literal["flag", "env", "cmake", "file"]


class PreflightError(EpbuildError):
    pass


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
    """Files (globs) of which at least one must name each environment variable and CMake option."""
    forwards_unknown: bool = True
    """The script hands unknown flags on to setuptools, which rejects them (so an unknown flag is an error)."""
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArgparseOption:
    names: tuple[str, ...]
    choices: tuple[str, ...] | None


def argparse_options(source: str) -> list[ArgparseOption]:
    """The options a script declares with `<parser>.add_argument("--x", ..., choices=[...])`, read without
    running it (the real setup.py imports torch at the top)."""
    out: list[ArgparseOption] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        names = tuple(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
        choices = None
        for kw in node.keywords:
            if kw.arg == "choices" and isinstance(kw.value, (ast.List, ast.Tuple)):
                choices = tuple(str(e.value) for e in kw.value.elts if isinstance(e, ast.Constant))
        if names:
            out.append(ArgparseOption(names, choices))
    return out


def _read_all(folder: Path, globs: Iterable[str]) -> str:
    texts = []
    for pattern in globs:
        for path in sorted(folder.glob(pattern)):
            if path.is_file():
                texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def check(component: str, pin: str, folder: Path, interface: Interface) -> list[str]:
    """Every mismatch between what the stage passes and what the source at the pin accepts, one line each."""
    where = f"{component} at {pin[:12]}"
    problems: list[str] = []
    options: dict[str, ArgparseOption] = {}
    if interface.parser is not None:
        script = folder / interface.parser
        if not script.is_file():
            return [f"{where}: {interface.parser} does not exist, but the stage runs it"]
        for option in argparse_options(script.read_text(errors="replace")):
            for name in option.names:
                options[name] = option
    readers = _read_all(folder, interface.readers)
    for use in interface.uses:
        asked = f"asked for by {use.key}"
        if use.kind == "flag":
            option = options.get(use.name)
            if option is None:
                known = ", ".join(sorted(n for n in options if n.startswith("--"))) or "none"
                fate = "setuptools rejects it (`error: option " + use.name + " not recognized`)" \
                    if interface.forwards_unknown else "the script rejects it"
                problems.append(f"{where}: {interface.parser} has no option {use.name} ({asked}); {fate}. "
                                f"Options at this pin: {known}")
            elif use.value is not None and option.choices is not None and use.value not in option.choices:
                problems.append(f"{where}: {interface.parser} {use.name} accepts {', '.join(option.choices)}, "
                                f"not {use.value!r} ({asked})")
        elif use.kind == "file":
            if not (folder / use.name).is_file():
                problems.append(f"{where}: {use.name} does not exist ({asked})")
        elif use.name not in readers:
            what = "environment variable" if use.kind == "env" else "CMake option"
            problems.append(f"{where}: no file of {', '.join(interface.readers)} reads the {what} {use.name} "
                            f"({asked}); the build would ignore it")
    return problems


def run(checks: Iterable[tuple[str, str, Path, Interface]], matrix_path: Path) -> None:
    """Checks every (component, pin, source folder, interface); raises one error listing every problem."""
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for component, pin, folder, interface in checks:
        for problem in check(component, pin, folder, interface):
            if (component, pin, problem) not in seen:
                seen.add((component, pin, problem))
                problems.append(problem)
    if problems:
        raise PreflightError(f"preflight: {matrix_path}: the sources at their pins do not accept what the build "
                             "would pass; nothing was built.\n  " + "\n  ".join(problems))
