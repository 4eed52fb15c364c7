"""`invoke` in a checkout: the tasks live in the package (epbuild/cli/tasks.py), so `invoke` here and the installed
`epbuild` command are one definition. `invoke --list` shows them all."""

from invoke import Collection

from epbuild.cli import tasks

ns = Collection.from_module(tasks)
