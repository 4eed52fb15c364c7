"""epbuild's command line: thin invoke tasks over the `epbuild` package, one module per kind of work. `invoke --list`
(or `epbuild --list` from an installed package) shows them all."""

from epbuild.cli.tasks_build import build, sources, test
from epbuild.cli.tasks_matrix import ci, gc, matrix, render, schema, setup_docker
from epbuild.cli.tasks_release import bump, pins, publish, pull

__all__ = ["build", "bump", "ci", "gc", "matrix", "pins", "publish", "pull", "render", "schema", "setup_docker", "sources",
           "test"]
