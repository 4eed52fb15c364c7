"""The published names of a cell: `<registry>/<image>:<cell>-<key12>` (immutable, names one content key) and
`<registry>/<image>:<cell>` (moving), plus `<cell>-<extra>` for each tag the matrix adds."""

from __future__ import annotations

from dataclasses import dataclass

from epbuild.render import RenderedCell

KEY_CHARS = 12


@dataclass(frozen=True)
class CellTags:
    repository: str
    immutable: str
    moving: str
    extra: tuple[str, ...]


def cell_tags(rc: RenderedCell, registry: str | None = None) -> CellTags:
    settings = rc.plan.matrix.image
    repository = f"{registry or settings.registry}/{settings.name}"
    name = rc.cell.name
    return CellTags(
        repository=repository,
        immutable=f"{repository}:{name}-{rc.key[:KEY_CHARS]}",
        moving=f"{repository}:{name}",
        extra=tuple(f"{repository}:{name}-{tag}" for tag in settings.extra_tags),
    )
