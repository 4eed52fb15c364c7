"""Preflight, in two passes, so a build that the components can already tell will fail never starts:

1. Each component's own preflight hook (its spec's `preflight`) over every cell it is built in.
2. Every flag, environment variable, CMake option and file a stage will hand to a component is checked against
   the tree it is built from: its source at its pin, or a local tree (the component's `interface`).

Both are pre-bake steps (epbuild/build/prebake.py), run after the fetch and before bake by `invoke build` and, on a new
pin, by `invoke bump`.

Why the second: DeepEP's setup.py forwards the arguments its parser does not know to setuptools (`sys.argv =
[sys.argv[0]] + unknown_args`, ROCm/DeepEP setup.py@a9ea9774), which stops with `error: option --X not
recognized`, and the options differ between commits (`--rocm-explicit-ctx` is missing at 5d90af8b,
`--rocm-gfx942-fp8-fnuz-max` at a9ea9774). Such a mismatch must fail in a second, naming the matrix key, not after
an hour of rocSHMEM.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from epbuild.model.interface import Interface
from epbuild.model.plan import CellPlan
from epbuild.model.stagegraph import built_pins
from epbuild.util.errors import EpbuildError


class PreflightError(EpbuildError):
    pass


def problems(plans: Iterable[CellPlan], only: Collection[str] | None = None) -> list[str]:
    """Pass 1: the components' own hooks (`only`: of these components; None: of every one a cell builds)."""
    out: list[str] = []
    for plan in plans:
        for name, pin in built_pins(plan).items():
            if only is None or name in only:
                out += [f"{plan.cell.name}: {name}: {p}"
                        for p in plan.registry[name].preflight(pin, plan.facts_for(name))]
    return list(dict.fromkeys(out))


def check(plans: Iterable[CellPlan], only: Collection[str] | None = None) -> None:
    found = problems(plans, only)
    if found:
        raise PreflightError("preflight checks failed; nothing was built:\n  " + "\n  ".join(found))


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


def source_problems(where: str, folder: Path, interface: Interface) -> list[str]:
    """Every mismatch between what the stage passes and what the source tree accepts, one line each; `where`
    names the tree (`deepep at 5d90af8b1234`, or a local tree's path)."""
    problems: list[str] = []
    options: dict[str, ArgparseOption] = {}
    if interface.parser is not None:
        script = folder / interface.parser
        if not script.is_file():
            return [f"{where}: {interface.parser} does not exist, but the stage runs it"]
        for parsed in argparse_options(script.read_text(errors="replace")):
            for name in parsed.names:
                options[name] = parsed
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
                                f"Options in this tree: {known}")
            elif use.value is not None and option.choices is not None and use.value not in option.choices:
                problems.append(f"{where}: {interface.parser} {use.name} accepts {', '.join(option.choices)}, "
                                f"not {use.value!r} ({asked})")
        elif use.kind == "file":
            if not (folder / use.name).is_file():
                problems.append(f"{where}: {use.name} does not exist ({asked})")
        elif use.name not in readers:
            what = {"env": "environment variable", "cmake": "CMake option", "meson": "meson option"}[use.kind]
            problems.append(f"{where}: no file of {', '.join(interface.readers)} reads the {what} {use.name} "
                            f"({asked}); the build would ignore it")
    return problems


def check_sources(checks: Iterable[tuple[str, Path, Interface]], matrix_path: Path) -> None:
    """Pass 2: every (tree's name, source folder, interface); raises one error listing every problem."""
    problems: list[str] = []
    for where, folder, interface in checks:
        for problem in source_problems(where, folder, interface):
            if problem not in problems:
                problems.append(problem)
    if problems:
        raise PreflightError(f"preflight: {matrix_path}: the sources to be built do not accept what the build "
                             "would pass; nothing was built.\n  " + "\n  ".join(problems))
