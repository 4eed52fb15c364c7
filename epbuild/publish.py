"""`invoke publish`: pushes a built cell under its immutable tag, checks the registry holds exactly that image with
this checkout's content key, and only then points the moving tags at it, inside the registry.

The local image is resolved to its ID once: another build (another matrix with the same image name, another
checkout) may move the local `<image>:<cell>` tag at any moment, so nothing after that reads the tag. Moving tags
are copied from `immutable@digest` with `docker buildx imagetools create`, never pushed from a local image (whose
digest differs after any rebuild), so they can only ever name what the immutable tag names. An interrupted
publish therefore never moves a tag, and a cell that is already published pushes nothing. Credentials: see
epbuild/credentials.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from epbuild import registry
from epbuild.commands import Runner
from epbuild.errors import EpbuildError
from epbuild.manifest import KEY_LABEL
from epbuild.render import RenderedCell
from epbuild.tags import CellTags, cell_tags


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


def _checked_local(rc: RenderedCell) -> registry.LocalImage:
    local = rc.plan.local_tag
    image = registry.local_image(local)
    if image is None:
        raise EpbuildError(f"{rc.cell.name}: no local image {local}; build it first "
                           f"(invoke build --cell {rc.cell.name})")
    if image.labels.get(KEY_LABEL) != rc.key:
        raise EpbuildError(
            f"{rc.cell.name}: the local image {local} has content key {image.labels.get(KEY_LABEL, '(none)')[:12]}, "
            f"but this checkout's matrix gives {rc.key[:12]}; rebuild it (invoke build --cell {rc.cell.name})")
    return image


def _checked_remote(rc: RenderedCell, ref: str, held: registry.RemoteImage) -> str:
    """The digest of `ref` once the registry's own copy shows this checkout's content key."""
    key = held.labels.get(KEY_LABEL, "(none)")
    if key != rc.key:
        raise EpbuildError(
            f"{rc.cell.name}: the registry's {ref} ({held.digest}) carries content key {key[:12]}, not "
            f"{rc.key[:12]}: that tag names another image, so nothing was moved; delete it in the registry and "
            "publish again")
    return held.digest


def _push_immutable(rc: RenderedCell, image: registry.LocalImage, tags: CellTags, runner: Runner) -> str:
    runner.run(["docker", "tag", image.id, tags.immutable])
    runner.run(["docker", "push", "--quiet", tags.immutable], capture=True)
    if runner.dry_run:
        return image.id  # with the containerd image store, the ID is the digest the push writes
    held = registry.remote_image(tags.immutable)
    if held is None:
        raise EpbuildError(f"{rc.cell.name}: the registry has no {tags.immutable} after the push; the moving tags "
                           "were left where they were")
    digest = _checked_remote(rc, tags.immutable, held)
    pushed = registry.local_repo_digest(image.id, tags.repository)
    if digest != pushed:
        raise EpbuildError(f"{rc.cell.name}: the registry holds {digest} for {tags.immutable}, not the pushed "
                           f"{pushed}; the moving tags were left where they were")
    return digest


def publish(rc: RenderedCell, runner: Runner, registry_override: str | None = None) -> Published:
    tags = cell_tags(rc, registry_override)
    image = _checked_local(rc)
    result = Published(rc.cell.name, tags.immutable)
    held = registry.remote_image(tags.immutable)
    if held is None:
        result.digest = _push_immutable(rc, image, tags, runner)
        result.pushed = True
    else:
        result.digest = _checked_remote(rc, tags.immutable, held)
    source = f"{tags.repository}@{result.digest}"
    for tag in (tags.moving, *tags.extra):
        if registry.remote_digest(tag) == result.digest:
            continue
        # A copy of the manifest the registry already holds and was just checked: the same bytes, so the same
        # digest, and no image of this machine's engine is involved.
        runner.run(["docker", "buildx", "imagetools", "create", "--tag", tag, source], capture=True)
        if not runner.dry_run and registry.remote_digest(tag) != result.digest:
            raise EpbuildError(f"{rc.cell.name}: {tag} does not name {result.digest} after the copy; check the "
                               "registry")
        result.moved.append(tag)
    return result
