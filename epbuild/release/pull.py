"""`invoke pull`: fetches a cell's prebuilt image by the content key of the current checkout, checks the image's
labels carry that key, and tags it under the cell's local name. When the registry has no image for the key it
says so, and how far the moving tag's pins are from this checkout's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from epbuild.build.build_inputs import fetch_abbreviated
from epbuild.model.patterns import DIGEST
from epbuild.model.stagegraph import built_pins
from epbuild.registry import reads as registry
from epbuild.release.publish import cell_registry_login, checked_labels
from epbuild.render.content_key import checkout_inputs, content_key
from epbuild.render.dockerfiles import RenderedCell, Rendering
from epbuild.render.manifest import KEY_LABEL, LABEL_PREFIX
from epbuild.render.tags import cell_tags
from epbuild.util import timeouts
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError


class NotPublished(EpbuildError):
    pass


def pin_distance(rc: RenderedCell, labels: dict[str, str]) -> list[str]:
    """The pins in which an image's labels differ from this checkout, as 'name: theirs -> ours'."""
    out = []
    for name, pin in built_pins(rc.plan).items():
        theirs = labels.get(f"{LABEL_PREFIX}.pin.{name}")
        if not (theirs or "").startswith(pin.commit):
            out.append(f"{name}: {(theirs or '(none)')[:12]} -> {pin.commit[:12]}")
    base = labels.get("org.opencontainers.image.base.name")
    if base != rc.plan.base.image:
        out.append(f"base image: {base} -> {rc.plan.base.image}")
    return out


def pull(rc: RenderedCell, key: str, runner: Runner, registry_override: str | None = None) -> str:
    """`key`: the cell's content key for this checkout (epbuild.render.content_key.checkout_inputs)."""
    tags = cell_tags(rc, key, registry_override)
    held = registry.remote_image(tags.immutable)
    if held is None:
        message = [f"{rc.cell.name}: the registry has no image for this checkout's content key {key[:12]} "
                   f"({tags.immutable})."]
        moving = registry.remote_labels(tags.moving)
        if moving is None:
            message.append(f"It has no {tags.moving} either: this cell was never published there.")
        else:
            distance = pin_distance(rc, moving)
            message.append(f"The moving tag {tags.moving} exists (key {moving.get(KEY_LABEL, '?')[:12]}); "
                           + (f"it differs from this checkout in {len(distance)} input(s): " + "; ".join(distance)
                              if distance else "its pins equal this checkout's, so its templates differ."))
        if moving is not None and not distance:
            message[-1] = message[-1].replace("its templates differ", "its base image digest or templates differ")
        message.append("Build it with `invoke pull --build ...` or `invoke build ...`.")
        raise NotPublished(" ".join(message))
    if held.labels.get(KEY_LABEL) != key:
        raise EpbuildError(f"{rc.cell.name}: the registry's {tags.immutable} carries content key "
                           f"{held.labels.get(KEY_LABEL, '(none)')[:12]}, not {key[:12]}: the tag does not match "
                           "its name, so nothing was pulled")
    # By digest: what was just checked is what arrives, whatever the tag names by then.
    pinned = f"{tags.repository}@{held.digest}"
    runner.run(["docker", "pull", "--quiet", pinned], timeout=timeouts.PULL.seconds(), timeout_setting=timeouts.PULL.env)
    if runner.dry_run:
        return held.digest
    labels = registry.local_labels(pinned) or {}
    if labels.get(KEY_LABEL) != key:
        raise EpbuildError(f"{rc.cell.name}: {pinned} carries content key {labels.get(KEY_LABEL)}, not "
                           f"{key}; it was not tagged locally")
    runner.run(["docker", "tag", pinned, rc.plan.local_tag])
    return held.digest


def pull_digest(rc: RenderedCell, digest: str, runner: Runner, registry_override: str | None = None) -> str:
    """Pulls exactly `digest` from the cell's repository (CI's GPU and publish steps: the digest the build step
    pushed), checks its labels show this checkout's recipe and pins, and tags nothing: later steps name the image
    by its ID, which is `digest` (the containerd image store), never by a tag another pull could move."""
    if not DIGEST.fullmatch(digest):
        raise EpbuildError(f"--digest {digest!r} is not an image digest: expected sha256: and 64 hexadecimal digits"
                           + (" (is the variable that should hold it unset?)" if not digest else ""))
    pinned = f"{cell_tags(rc, '', registry_override).repository}@{digest}"
    runner.run(["docker", "pull", "--quiet", pinned], timeout=timeouts.PULL.seconds(), timeout_setting=timeouts.PULL.env)
    if runner.dry_run:
        return digest
    image = registry.local_image(pinned)
    if image is None or image.id != digest:
        raise EpbuildError(f"{rc.cell.name}: the engine holds {image.id if image else 'nothing'} for {pinned}, not "
                           f"{digest}; it needs the containerd image store (ci/setup-docker.sh turns it on)")
    checked_labels(rc, pinned, image.labels)
    return digest


def pull_cells(rendering: Rendering, cells: list[RenderedCell], root: Path, runner: Runner,
               registry_override: str | None, *, keep_missing: bool, say: Callable[[str], None] = print) -> list[RenderedCell]:
    """Pulls each cell by this checkout's content key; returns the cells the registry has no image for when
    `keep_missing` (else the first such cell raises NotPublished)."""
    fetch_abbreviated(rendering, cells, root, runner)
    resolved = checkout_inputs(rendering, cells, root)
    missing = []
    with cell_registry_login(cells[0], registry_override, runner):
        for rc in cells:
            try:
                digest = pull(rc, content_key(rc, resolved), runner, registry_override)
                say(f"{rc.cell.name}: pulled {digest}, tagged {rc.plan.local_tag}")
            except NotPublished as exc:
                if not keep_missing:
                    raise
                say(f"{exc}\nbuilding it instead.")
                missing.append(rc)
    return missing
