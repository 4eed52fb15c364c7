"""What every task of tasks.py shares: the `@task` decorator (invoke's, with one short flag per option name across
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
from typing import Any

import invoke

from epbuild.util.errors import EpbuildError

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
