"""What `publish --dry-run` and `pull --dry-run` print: the commands a real run may execute, worked out from the
matrix alone. A dry run contacts neither the engine nor a registry, so it cannot know which steps a real run
would skip (a tag the registry already holds); it prints them all, in order."""

from __future__ import annotations

from epbuild.commands import shell_line
from epbuild.render import RenderedCell
from epbuild.tags import cell_tags


def publish_lines(rc: RenderedCell, registry: str | None) -> list[str]:
    tags = cell_tags(rc, registry)
    local = rc.plan.local_tag
    lines = [f"# {rc.cell.name}: check that {local} carries content key {rc.key[:12]}, then push it unless the "
             f"registry holds {tags.immutable} already"]
    for tag in (tags.immutable, tags.moving, *tags.extra):
        lines += [shell_line(["docker", "tag", local, tag]), shell_line(["docker", "push", "--quiet", tag])]
    return lines


def pull_lines(rc: RenderedCell, registry: str | None) -> list[str]:
    tags = cell_tags(rc, registry)
    return [f"# {rc.cell.name}: the image for this checkout's content key {rc.key[:12]}",
            shell_line(["docker", "pull", "--quiet", tags.immutable]),
            shell_line(["docker", "tag", tags.immutable, rc.plan.local_tag])]
