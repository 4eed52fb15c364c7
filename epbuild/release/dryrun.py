"""What `publish --dry-run` and `pull --dry-run` print: the commands a real run may execute, worked out from the
matrix and local files alone. A dry run contacts neither the engine nor a registry, so it cannot know which
steps a real run would skip (a tag the registry already holds); it prints them all, in order."""

from __future__ import annotations

from pathlib import Path

from epbuild.registry import api as registry_http
from epbuild.render.content_key import checkout_keys
from epbuild.render.dockerfiles import RenderedCell, Rendering
from epbuild.render.tags import cell_tags
from epbuild.util.commands import shell_line

UNKNOWN_KEY = "KEY"


def publish_lines(rc: RenderedCell, registry: str | None) -> list[str]:
    tags = cell_tags(rc, UNKNOWN_KEY, registry)
    local = rc.plan.local_tag
    lines = [f"# {rc.cell.name}: check that {local} was built from recipe {rc.key[:12]} and from no local tree; "
             f"{UNKNOWN_KEY} is its content-key label's first 12 digits; push unless the registry holds it already"]
    lines += [shell_line(["docker", "tag", local, tags.immutable]),
              shell_line(["docker", "push", "--quiet", tags.immutable]),
              f"# then each moving tag gets the manifest the registry holds for {tags.immutable} (DIGEST), copied "
              "inside the registry"]
    return lines + [registry_http.replay_line(f"{tags.repository}@DIGEST", tag) for tag in (tags.moving, *tags.extra)]


def pull_lines(rc: RenderedCell, key: str | None, registry: str | None) -> list[str]:
    """`key`: the content key if the matrix pins everything it covers, else None (it needs the engine or
    registry to resolve the base image's digest)."""
    tags = cell_tags(rc, key or UNKNOWN_KEY, registry)
    what = f"content key {key[:12]}" if key else f"content key ({UNKNOWN_KEY}: needs the base image's digest)"
    return [f"# {rc.cell.name}: the image for this checkout's {what}",
            shell_line(["docker", "pull", "--quiet", tags.immutable]),
            shell_line(["docker", "tag", tags.immutable, rc.plan.local_tag])]


def pull_plan(rendering: Rendering, cells: list[RenderedCell], root: Path, registry: str | None,
              build: bool) -> list[str]:
    """Every cell's pull_lines with the keys the matrix alone gives, then (with --build) what happens to the cells
    the registry has no image for."""
    keys = checkout_keys(rendering, cells, root, engine=False)
    lines = [line for rc in cells for line in pull_lines(rc, keys[rc.cell.name], registry)]
    if build:
        lines.append("# then each cell the registry has no image for is built, as `invoke build --dry-run` prints")
    return lines
