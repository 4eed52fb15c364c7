"""The `epbuild` command of an installed package: the tasks of epbuild/cli/tasks.py (the ones `invoke` runs in a
checkout), under invoke's own command line (`epbuild --list`, `epbuild build -h`), from any directory."""

from __future__ import annotations

from invoke import Collection, Program

from epbuild import __version__
from epbuild.cli import tasks


def main() -> None:
    program = Program(namespace=Collection.from_module(tasks), name="epbuild", binary="epbuild", version=__version__)
    program.run()
