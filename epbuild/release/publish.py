"""`invoke publish`: pushes a built cell under its immutable tag, checks the registry holds exactly that image with
this checkout's content key, and only then points the moving tags at it, inside the registry.

The local image is resolved to its ID once: another build (another matrix with the same image name, another
checkout) may move the local `<image>:<cell>` tag at any moment, so nothing after that reads the tag. Moving tags
are copied from `immutable@digest` inside the registry, manifest bytes and all (epbuild/registry/api.py), never
pushed from a local image (whose digest differs after any rebuild), so they can only ever name the digest the
immutable tag names. An interrupted
publish therefore never moves a tag, and a cell that is already published pushes nothing. Credentials: see
epbuild/registry/credentials.py.

CI (docs/ci.md) uses two more modes: `staging` (the build step) always pushes this checkout's build, since a
staging tag may name an image someone else pushed first, and hands on the digest it wrote; `digest` (the publish
step) publishes exactly the image with that ID, pulled by digest, and refuses a registry whose immutable tag
names another: a staging image with the right key but another digest is never what gets published."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from epbuild.model.stagegraph import built_pins
from epbuild.registry import api as registry_http
from epbuild.registry import reads as registry
from epbuild.registry.credentials import registry_login
from epbuild.render.dockerfiles import RenderedCell
from epbuild.render.manifest import DIRTY_LABEL, KEY_LABEL, LABEL_PREFIX, RECIPE_LABEL
from epbuild.render.tags import CellTags, cell_tags, published_name
from epbuild.util import timeouts
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError


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


def _checked_local(rc: RenderedCell, digest: str | None = None) -> registry.LocalImage:
    """The local image (the one whose ID is `digest` when given, else the cell's local tag), once its labels show
    it was built from this checkout's recipe and pinned commits, from no local tree, and with a content key."""
    local = digest or rc.plan.local_tag
    image = registry.local_image(local)
    if image is None or (digest and image.id != digest):
        how = (f"pull it first (invoke pull --digest {digest} --registry STAGING ...)" if digest else
               f"build it first (invoke build --cell {rc.cell.name})")
        raise EpbuildError(f"{rc.cell.name}: no local image {local}; {how}")
    checked_labels(rc, f"the local image {local}", image.labels)
    return image


def checked_labels(rc: RenderedCell, what: str, labels: dict[str, str]) -> None:
    """Refuses an image whose labels do not show this checkout's recipe and pinned commits, a content key, and no
    local tree."""
    if labels.get(RECIPE_LABEL) != rc.key or not labels.get(KEY_LABEL):
        raise EpbuildError(
            f"{rc.cell.name}: {what} was built from recipe {labels.get(RECIPE_LABEL, '(none)')[:12]}, "
            f"but this checkout's matrix gives {rc.key[:12]}; rebuild it (invoke build --cell {rc.cell.name})")
    if labels.get(DIRTY_LABEL, "false") != "false":
        raise EpbuildError(
            f"{rc.cell.name}: {what} was built from local trees ({labels[DIRTY_LABEL]}, "
            "uncommitted changes included); publish only images built from pinned commits: commit, pin "
            f"(invoke bump), rebuild")
    moved = [f"{name} (image {labels.get(f'{LABEL_PREFIX}.pin.{name}', '(none)')[:12]}, matrix {pin.commit[:12]})"
             for name, pin in built_pins(rc.plan).items()
             if not labels.get(f"{LABEL_PREFIX}.pin.{name}", "").startswith(pin.commit)]
    if moved:
        raise EpbuildError(f"{rc.cell.name}: {what} was built from other commits than this "
                           f"checkout's: {', '.join(moved)}; rebuild it (invoke build --cell {rc.cell.name})")


def _checked_remote(rc: RenderedCell, ref: str, held: registry.RemoteImage, key: str) -> str:
    """The digest of `ref` once the registry's own copy shows the content key `key`."""
    found = held.labels.get(KEY_LABEL, "(none)")
    if found != key:
        raise EpbuildError(
            f"{rc.cell.name}: the registry's {ref} ({held.digest}) carries content key {found[:12]}, not "
            f"{key[:12]}: that tag names another image, so nothing was moved; delete it in the registry and "
            "publish again")
    return held.digest


def _push_immutable(rc: RenderedCell, image: registry.LocalImage, tags: CellTags, runner: Runner, key: str) -> str:
    # The one registry write left to docker, on purpose: the image's blobs live only in the engine's store, and
    # `docker push` sends them from there; through our client they would first have to be exported whole
    # (`docker save`, many GB for a vLLM image) to disk. What it wrote is then read back through our client.
    runner.run(["docker", "tag", image.id, tags.immutable])
    runner.run(["docker", "push", "--quiet", tags.immutable], capture=True, timeout=timeouts.PUSH.seconds(),
               timeout_setting=timeouts.PUSH.env)
    if runner.dry_run:
        return image.id  # with the containerd image store, the ID is the digest the push writes
    held = registry.remote_image(tags.immutable)
    if held is None:
        raise EpbuildError(f"{rc.cell.name}: the registry has no {tags.immutable} after the push; the moving tags "
                           "were left where they were")
    digest = _checked_remote(rc, tags.immutable, held, key)
    pushed = registry.local_repo_digest(image.id, tags.repository)
    if digest != pushed:
        raise EpbuildError(f"{rc.cell.name}: the registry holds {digest} for {tags.immutable}, not the pushed "
                           f"{pushed}; the moving tags were left where they were")
    return digest


def publish(rc: RenderedCell, runner: Runner, registry_override: str | None = None, *, digest: str | None = None,
            staging: bool = False) -> Published:
    """`digest`: publish exactly the local image with that ID (CI's publish step, after `invoke pull --digest`),
    refusing a registry whose immutable tag names another. `staging`: push the image even when the registry holds
    the immutable tag (a staging namespace: the tag names what was pushed last, and the digest this push wrote
    is what travels on), and move no tags."""
    image = _checked_local(rc, digest)
    # The image's own key: it covers the base digest and full commits its build resolved.
    key = image.labels[KEY_LABEL]
    tags = cell_tags(rc, key, registry_override)
    result = Published(rc.cell.name, tags.immutable)
    held = None if staging else registry.remote_image(tags.immutable)
    if held is None:
        result.digest = _push_immutable(rc, image, tags, runner, key)
        result.pushed = True
    else:
        result.digest = _checked_remote(rc, tags.immutable, held, key)
    if digest and result.digest != digest:
        raise EpbuildError(f"{rc.cell.name}: the registry's {tags.immutable} names {result.digest}, not {digest}, the "
                           "image this run built and checked: nothing was moved (an immutable tag is never "
                           "rewritten; delete it in the registry if it is wrong)")
    if staging:
        return result
    source = f"{tags.repository}@{result.digest}"
    for tag in (tags.moving, *tags.extra):
        if registry.remote_digest(tag) == result.digest:
            continue
        # The manifest the registry already holds (and was just checked) as `result.digest`, its very bytes
        # written under the tag inside the registry: no image of this machine's engine is involved, and the tag
        # gets that digest (buildx 0.13's imagetools would wrap a lone image manifest in a new index).
        runner.record(registry_http.replay_line(source, tag))
        if not runner.dry_run:
            registry_http.copy_manifest(source, tag)
        if not runner.dry_run and registry.remote_digest(tag) != result.digest:
            raise EpbuildError(f"{rc.cell.name}: {tag} does not name {result.digest} after the copy; check the "
                               "registry")
        result.moved.append(tag)
    return result


def cell_registry_login(rc: RenderedCell, registry: str | None,
                        runner: Runner) -> contextlib.AbstractContextManager[None]:
    """registry_login for the registry the cell is published to (`registry` overrides the matrix's)."""
    return registry_login(published_name(rc, registry).split("/", 1)[0], runner)
