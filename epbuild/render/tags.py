"""The published names of a cell: `<registry>/<image>:<cell>-<key12>` (immutable, names one content key) and
`<registry>/<image>:<cell>` (moving), plus `<cell>-<extra>` for each tag the matrix adds."""

from __future__ import annotations

from dataclasses import dataclass

from epbuild.model.patterns import REGISTRY
from epbuild.render.dockerfiles import RenderedCell
from epbuild.util.errors import EpbuildError

KEY_CHARS = 12


@dataclass(frozen=True)
class CellTags:
    repository: str
    immutable: str
    moving: str
    extra: tuple[str, ...]


def checked_registry(value: str | None) -> str | None:
    """A --registry override: None keeps the matrix's registry; anything given must be a registry. An empty
    value (an unset CI variable) is an error, never a silent fall-back to the production registry."""
    if value is None:
        return None
    if not REGISTRY.fullmatch(value):
        raise EpbuildError(f"--registry {value!r} is not a registry: expected host[:port][/namespace]"
                           + (" (is the variable that should name it unset?)" if not value else ""))
    return value


def published_name(rc: RenderedCell, registry: str | None = None) -> str:
    """The moving name users pull: <registry>/<image>:<cell>."""
    settings = rc.plan.matrix.image
    return f"{checked_registry(registry) or settings.registry}/{settings.name}:{rc.cell.name}"


def cell_tags(rc: RenderedCell, key: str, registry: str | None = None) -> CellTags:
    """`key` is the cell's content key (epbuild.render.content_key)."""
    settings = rc.plan.matrix.image
    registry = checked_registry(registry)
    repository = f"{registry or settings.registry}/{settings.name}"
    name = rc.cell.name
    return CellTags(
        repository=repository,
        immutable=f"{repository}:{name}-{key[:KEY_CHARS]}",
        moving=f"{repository}:{name}",
        extra=tuple(f"{repository}:{name}-{tag}" for tag in settings.extra_tags),
    )
