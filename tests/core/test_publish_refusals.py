"""publish names an image by the content key it carries, and refuses images this checkout does not describe:
another recipe, other commits, or a local tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from epbuild.model.matrix import load_matrix
from epbuild.model.stagegraph import built_pins
from epbuild.registry import reads as registry
from epbuild.release import publish
from epbuild.render.dockerfiles import RenderedCell, render_matrix
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

ROOT = Path(__file__).resolve().parents[2]
KEY = "abcdef012345" + "0" * 52


@pytest.fixture
def cell() -> RenderedCell:
    rendering = render_matrix(load_matrix(ROOT / "examples" / "offline" / "matrix.yaml"), ROOT)
    return next(rc for rc in rendering.cells if rc.cell.name == "gfx950-cx7-sid")


def image_labels(rc: RenderedCell, **changes: str) -> dict[str, str]:
    labels = {"io.epbuild.recipe-key": rc.key, "io.epbuild.content-key": KEY, "io.epbuild.dirty": "false",
              **{f"io.epbuild.pin.{name}": pin.commit for name, pin in built_pins(rc.plan).items()}}
    return {**labels, **changes}


def publish_with(monkeypatch: pytest.MonkeyPatch, rc: RenderedCell, labels: dict[str, str]) -> Any:
    digest = "sha256:" + "9" * 64
    monkeypatch.setattr(registry, "local_image", lambda ref: registry.LocalImage(digest, labels))
    # Already published, and every tag names it: publish only checks.
    monkeypatch.setattr(registry, "remote_image", lambda ref: registry.RemoteImage(digest, labels))
    monkeypatch.setattr(registry, "remote_digest", lambda ref: digest)
    return publish.publish(rc, Runner(dry_run=True), "127.0.0.1:5000/ci")


def test_the_immutable_tag_is_the_image_s_own_key(monkeypatch: pytest.MonkeyPatch, cell: RenderedCell) -> None:
    result = publish_with(monkeypatch, cell, image_labels(cell))
    assert result.immutable == "127.0.0.1:5000/ci/epbuild-offline/stack:gfx950-cx7-sid-abcdef012345"


@pytest.mark.parametrize("change, message", [
    ({"io.epbuild.recipe-key": "0" * 64}, "was built from recipe 000000000000"),
    ({"io.epbuild.pin.deepep": "f" * 40}, "built from other commits than this checkout's: deepep"),
    ({"io.epbuild.dirty": "deepep"}, "built from local trees (deepep"),
])
def test_images_this_checkout_does_not_describe_are_refused(monkeypatch: pytest.MonkeyPatch, cell: RenderedCell,
                                                            change: dict[str, str], message: str) -> None:
    with pytest.raises(EpbuildError) as info:
        publish_with(monkeypatch, cell, image_labels(cell, **change))
    assert message in str(info.value)
