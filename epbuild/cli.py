"""The `epbuild` command of an installed package: the tasks of the repository's tasks.py, under invoke's own
command line (`epbuild --list`, `epbuild build -h`), from any directory."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from invoke import Collection, Program

from epbuild import __version__
from epbuild.resources import resource


def _tasks_module() -> ModuleType:
    # tasks.py stays the one definition of the tasks, so `invoke` in the repository and `epbuild` agree.
    path = resource("tasks.py")
    spec = importlib.util.spec_from_file_location("epbuild_tasks", path)
    assert spec is not None and spec.loader is not None, f"epbuild's tasks are missing: {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    program = Program(namespace=Collection.from_module(_tasks_module()), name="epbuild", binary="epbuild",
                      version=__version__)
    program.run()
