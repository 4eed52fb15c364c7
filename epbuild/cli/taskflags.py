"""What every task shares (epbuild/cli/tasks*.py): their common help texts and cell selection, the `@task` decorator (invoke's, with one short flag per option name across
every task), `user_errors` (an EpbuildError is one line and exit 2, no traceback) and the log format.

invoke gives each option the first free letter of its name, task by task, so `-c` was `--cell` in one task and
`--cache-from` in another, and `--cache-from` took `-h` from `--help`. Here only the options below get a short
flag, the same one everywhere; every other option is long only.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import invoke
from invoke import Exit

from epbuild.util.errors import EpbuildError

if TYPE_CHECKING:
    from epbuild.render.dockerfiles import RenderedCell, Rendering
    from epbuild.util.commands import Runner

SHORT_FLAGS = {"matrix": "m", "arch": "a", "nic": "n", "cell": "c", "json": "j", "quiet": "q"}


class EpbuildTask(invoke.Task):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short is not None and short not in taken_names:
            opts["names"].append(short)
        return opts


def task(*args: Any, **kwargs: Any) -> Callable[..., Any] | invoke.Task:
    """invoke's @task, bare or with options, making EpbuildTask tasks."""
    return invoke.task(*args, klass=EpbuildTask, **kwargs)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turns an EpbuildError into a one-paragraph message and exit code 2, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EpbuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise invoke.Exit(code=2) from None

    return wrapper


def logging_setup() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


MATRIX_HELP = {"matrix": "The build matrix file (default: matrix.yaml)."}
CELL_HELP = {
    **MATRIX_HELP,
    "arch": "Arch of the cells to act on (repeatable; an axes.arch value of the matrix, e.g. gfx942+gfx950).",
    "nic": "NIC of the cells to act on (repeatable; an axes.nic value of the matrix).",
    "base": "Base of the cells to act on (repeatable; an axes.base value of the matrix).",
    "all": "Act on every cell of the matrix.",
    "cell": "A cell by name, e.g. gfx950-cx7 (repeatable; combines with --arch/--nic selections).",
}


def selected_cells(matrix: str, arch: list[str] | None, nic: list[str] | None, all: bool,
                   cell: list[str] | None = None,
                   base: list[str] | None = None) -> tuple[Rendering, list[RenderedCell]]:
    """The rendering of `matrix` and the cells a task's --arch/--nic/--base/--cell/--all select."""
    from epbuild.cli import project

    return project.selected(matrix, arch or [], nic or [], everything=all, names=cell, bases=base)


def run_dir_runner(kind: str) -> Runner:
    """A runner that records every command in a new run folder (build/logs/<run>/replay.sh), which it names."""
    from epbuild.build.run_dir import replaying_runner
    from epbuild.cli import project

    runner, run_dir = replaying_runner(project.ROOT, kind)
    print(f"logs and replayable commands: {run_dir}")
    return runner


def fail_on_drift(what: str, task: str, matrix: str, problems: list[str]) -> None:
    """Exits 1 naming each file that differs from its render, and the command that renders it."""
    if problems:
        option = "" if matrix == "matrix.yaml" else f" --matrix {matrix}"
        print(f"{what}; run `invoke {task}{option}`:\n" + "\n".join(f"  {line}" for line in problems), file=sys.stderr)
        raise Exit(code=1)
