"""`invoke publish`: pushes a built cell under its immutable tag, checks the registry holds exactly that digest,
and only then points the moving tags at it. An interrupted push therefore never moves a tag, and a cell that is
already published pushes nothing. Credentials come from `docker login` or EPBUILD_REGISTRY_USER/_PASSWORD and
are handed to docker on standard input only: never to an image, a label, a build arg or a log."""

from __future__ import annotations

from dataclasses import dataclass, field

from epbuild import registry
from epbuild.commands import Runner
from epbuild.errors import EpbuildError
from epbuild.manifest import DIRTY_LABEL, KEY_LABEL, LABEL_PREFIX, RECIPE_LABEL
from epbuild.stagegraph import built_pins
from epbuild.render import RenderedCell
from epbuild.tags import cell_tags


@dataclass
class Published:
    cell: str
    immutable: str
    digest: str = ""
    pushed: bool = False
    moved: list[str] = field(default_factory=list)

    def line(self) -> str:
        what = "pushed" if self.pushed else "already in the registry, nothing pushed"
        moved = f"; moved {', '.join(self.moved)}" if self.moved else "; moving tags already there"
        return f"{self.cell}: {self.immutable} {what} ({self.digest}){moved}"


def publish(rc: RenderedCell, runner: Runner, registry_override: str | None = None) -> Published:
    local = rc.plan.local_tag
    labels = registry.local_labels(local)
    if labels is None:
        raise EpbuildError(f"{rc.cell.name}: no local image {local}; build it first (invoke build --cell {rc.cell.name})")
    if labels.get(RECIPE_LABEL) != rc.key or not labels.get(KEY_LABEL):
        raise EpbuildError(
            f"{rc.cell.name}: the local image {local} was built from recipe {labels.get(RECIPE_LABEL, '(none)')[:12]}, "
            f"but this checkout's matrix gives {rc.key[:12]}; rebuild it (invoke build --cell {rc.cell.name})")
    if labels.get(DIRTY_LABEL, "false") != "false":
        raise EpbuildError(
            f"{rc.cell.name}: the local image {local} was built from local trees ({labels[DIRTY_LABEL]}, "
            "uncommitted changes included); publish only images built from pinned commits: commit, pin "
            f"(invoke bump), rebuild")
    moved = [f"{name} (image {labels.get(f'{LABEL_PREFIX}.pin.{name}', '(none)')[:12]}, matrix {pin.commit[:12]})"
             for name, pin in built_pins(rc.plan).items()
             if not labels.get(f"{LABEL_PREFIX}.pin.{name}", "").startswith(pin.commit)]
    if moved:
        raise EpbuildError(f"{rc.cell.name}: the local image {local} was built from other commits than this "
                           f"checkout's: {', '.join(moved)}; rebuild it (invoke build --cell {rc.cell.name})")
    # The image's own key: it covers the base digest and full commits the build resolved.
    tags = cell_tags(rc, labels[KEY_LABEL], registry_override)
    result = Published(rc.cell.name, tags.immutable)
    digest = registry.remote_digest(tags.immutable)
    if digest is None:
        runner.run(["docker", "tag", local, tags.immutable])
        runner.run(["docker", "push", "--quiet", tags.immutable], capture=True)
        pushed = registry.local_repo_digest(tags.immutable, tags.repository)
        digest = registry.remote_digest(tags.immutable)
        if runner.dry_run:
            digest = "(the pushed digest)"
        elif digest is None or digest != pushed:
            raise EpbuildError(f"{rc.cell.name}: the registry holds {digest} for {tags.immutable}, not the pushed "
                               f"{pushed}; the moving tags were left where they were")
        result.pushed = True
    result.digest = digest
    for tag in (tags.moving, *tags.extra):
        if registry.remote_digest(tag) == digest:
            continue
        # The same local image again: its layers are in the registry already, so only the manifest (the very
        # bytes just verified, hence the same digest) is written under the moving name.
        runner.run(["docker", "tag", local, tag])
        runner.run(["docker", "push", "--quiet", tag], capture=True)
        if not runner.dry_run and registry.remote_digest(tag) != digest:
            raise EpbuildError(f"{rc.cell.name}: {tag} does not name {digest} after the push; check the registry")
        result.moved.append(tag)
    return result
