"""The tasks that render and list: `invoke matrix`, `render`, `schema`, `ci`, and the upkeep tasks `gc` and
`setup-docker`."""

from __future__ import annotations

from invoke import Context

from epbuild.cli.taskflags import MATRIX_HELP, fail_on_drift, task, user_errors


@task(help={**MATRIX_HELP, "json": "Print JSON for scripts instead of a table."})
@user_errors
def matrix(c: Context, matrix: str = "matrix.yaml", json: bool = False) -> None:
    """List the cells of the matrix and what each builds."""
    from epbuild.cli import listing, project

    r = project.rendering(matrix)
    print(listing.as_json(r, project.ROOT) if json else listing.as_table(r, project.ROOT))


@task(help={**MATRIX_HELP, "check": "Render in memory and fail, naming the files, if images/ differs."})
@user_errors
def render(c: Context, matrix: str = "matrix.yaml", check: bool = False) -> None:
    """Render the matrix into images/<cell>/ and images/docker-bake.json, and README.md's stage diagram."""
    from epbuild.cli import project
    from epbuild.render import rendered

    r = project.rendering(matrix)
    if check:
        fail_on_drift(f"{r.out_dir} is out of date with {r.matrix.path} and the templates", "render", matrix,
                       rendered.drift(r, project.ROOT))
        print(f"{r.out_dir}: up to date ({len(r.cells)} cells)")
        return
    print("\n".join(rendered.write(r, project.ROOT)))


@task(help={"output": "Write the schema to this file (default: matrix.schema.json)."})
@user_errors
def schema(c: Context, output: str = "matrix.schema.json") -> None:
    """Export the matrix schema as JSON Schema, for editors and CI."""
    from epbuild.cli import project
    from epbuild.model import schema as matrix_schema

    path = project.matrix_path(output)
    matrix_schema.write(path)
    print(f"wrote {path}")


@task(help={**MATRIX_HELP, "check": "Render in memory and fail, naming the files, if the CI pipelines differ."})
@user_errors
def ci(c: Context, matrix: str = "matrix.yaml", check: bool = False) -> None:
    """Render the CI pipelines (Buildkite ci/pipeline.yml, GitHub .github/workflows/epbuild.yml) from the matrix."""
    from epbuild.ci import pipelines
    from epbuild.cli import project

    files = pipelines.render(project.rendering(matrix), project.ROOT)
    if check:
        fail_on_drift(f"the CI pipelines are out of date with {matrix}", "ci", matrix, pipelines.drift(files))
        print(f"CI pipelines: up to date ({len(files)} files)")
        return
    for path in pipelines.write(files):
        print(f"wrote {path}")


@task(iterable=["matrix"],
      help={"matrix": "A matrix whose builds' data is kept (repeatable; default: matrix.yaml). Name every matrix "
                      "you build from this checkout: what only the others need is removed.",
            "keep": "Keep the newest N leftovers of earlier pins of each kind (exports, wheelhouses, crates, ...).",
            "yes": "Remove them (default: only list what would go and the bytes it would free)."})
@user_errors
def gc(c: Context, matrix: list[str] | None = None, keep: int = 0, yes: bool = False) -> None:
    """List (and with --yes remove) what under build/ nothing current needs: layouts of dropped cells, unused
    blobs, exports/wheelhouses/crates/archives of old pins, mirrors of repositories no longer named."""
    from epbuild.build import garbage
    from epbuild.cli import project

    renderings = [project.rendering(path) for path in matrix or [project.DEFAULT_MATRIX]]
    print("\n".join(garbage.run(renderings, project.ROOT, keep=keep, delete=yes)))


@task
def setup_docker(c: Context) -> None:
    """Install and start a Docker engine with buildx where missing (does nothing when one works)."""
    import shlex

    from epbuild.util.resources import resource

    c.run(f"bash {shlex.quote(str(resource('ci/setup-docker.sh')))}", pty=False)
