"""epbuild's command line: thin invoke tasks over the `epbuild` package. `invoke --list` shows them all."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from invoke import Context, Exit, task

from epbuild.errors import EpbuildError

MATRIX_HELP = {"matrix": "The build matrix file (default: matrix.yaml)."}
CELL_HELP = {
    **MATRIX_HELP,
    "arch": "Arch of the cells to act on (repeatable; gfx942, gfx950, gfx942+gfx950).",
    "nic": "NIC of the cells to act on (repeatable; cx7, io, thor2).",
    "all": "Act on every cell of the matrix.",
}


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turns an EpbuildError into a one-paragraph message and exit code 2, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EpbuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=2) from None

    return wrapper


@task(help={**MATRIX_HELP, "json": "Print JSON for scripts instead of a table."})
@user_errors
def matrix(c: Context, matrix: str = "matrix.yaml", json: bool = False) -> None:
    """List the cells of the matrix and what each builds."""
    from epbuild import listing, project

    r = project.rendering(matrix)
    print(listing.as_json(r) if json else listing.as_table(r))


@task(help={**MATRIX_HELP, "check": "Render in memory and fail, naming the files, if images/ differs."})
@user_errors
def render(c: Context, matrix: str = "matrix.yaml", check: bool = False) -> None:
    """Render the matrix into images/<cell>/Dockerfile and images/docker-bake.json."""
    from epbuild import project
    from epbuild import render as rendering

    r = project.rendering(matrix)
    if check:
        problems = rendering.drift(r)
        if problems:
            print(f"{r.out_dir} is out of date with {r.matrix.path} and templates/; run `invoke render"
                  f"{'' if matrix == 'matrix.yaml' else ' --matrix ' + matrix}`:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            raise Exit(code=1)
        print(f"{r.out_dir}: up to date ({len(r.cells)} cells)")
        return
    written = rendering.write(r)
    print(f"wrote {len(written)} files for {len(r.cells)} cells to {r.out_dir}")


@task(help={"output": "Write the schema to this file (default: matrix.schema.json)."})
@user_errors
def schema(c: Context, output: str = "matrix.schema.json") -> None:
    """Export the matrix schema as JSON Schema, for editors and CI."""
    from epbuild import project, schema as matrix_schema

    path = project.matrix_path(output)
    path.write_text(matrix_schema.json_schema())
    print(f"wrote {path}")
