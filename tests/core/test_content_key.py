"""The content key means what the README says: it does not depend on where the matrix is or on its comments,
and it covers the base image's digest and full commits (however the matrix spells them)."""

from __future__ import annotations

import shutil
from pathlib import Path

from epbuild.inputs.resolve import Resolved
from epbuild.model.matrix import load_matrix
from epbuild.render.content_key import content_key
from epbuild.render.dockerfiles import render_matrix

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ROOT / "examples" / "offline" / "matrix.yaml"
DIGEST = "sha256:" + "1" * 64


def keys(matrix: Path, resolved: Resolved | None = None) -> dict[str, str]:
    rendering = render_matrix(load_matrix(matrix), ROOT)
    if resolved is None:
        return {rc.cell.name: rc.key for rc in rendering.cells}
    return {rc.cell.name: content_key(rc, resolved) for rc in rendering.cells}


def resolved(**commits: str) -> Resolved:
    data = load_matrix(OFFLINE).model.components.pins()
    return Resolved(base_digests={"sid": DIGEST, "trixie": DIGEST},
                    commits={name: commits.get(name, pin.commit) for name, pin in data.items()})


def test_the_same_matrix_elsewhere_and_with_other_comments_gives_the_same_keys(tmp_path: Path) -> None:
    elsewhere = tmp_path / "deep" / "er" / "matrix.yaml"
    elsewhere.parent.mkdir(parents=True)
    shutil.copy(OFFLINE, elsewhere)
    commented = tmp_path / "commented.yaml"
    commented.write_text("# a comment of our own\n" + OFFLINE.read_text().replace("\n  arch:", "\n  # why\n  arch:"))
    assert keys(elsewhere, resolved()) == keys(OFFLINE, resolved()) == keys(commented, resolved())
    # The rendered header does name the matrix's location: only the key ignores it.
    assert render_matrix(load_matrix(elsewhere), ROOT).cells[0].dockerfile != \
        render_matrix(load_matrix(OFFLINE), ROOT).cells[0].dockerfile


def test_the_key_covers_the_base_image_digest() -> None:
    other = Resolved(base_digests={"sid": "sha256:" + "2" * 64, "trixie": "sha256:" + "3" * 64},
                     commits=resolved().commits)
    assert set(keys(OFFLINE, resolved()).values()).isdisjoint(keys(OFFLINE, other).values())


def test_an_abbreviated_and_a_full_commit_give_the_same_key(tmp_path: Path) -> None:
    full = load_matrix(OFFLINE).model.components.deepep.commit
    short = tmp_path / "matrix.yaml"
    short.write_text(OFFLINE.read_text().replace(full, full[:9]))
    assert keys(short, resolved()) == keys(OFFLINE, resolved())
    moved = resolved(deepep="f" * 40)
    assert set(keys(OFFLINE, moved).values()).isdisjoint(keys(OFFLINE, resolved()).values())


def test_pinning_the_digest_in_the_matrix_renders_from_it(tmp_path: Path) -> None:
    pinned = tmp_path / "matrix.yaml"
    image = load_matrix(OFFLINE).model.bases["sid"].image
    pinned.write_text(OFFLINE.read_text().replace(f"    image: {image}\n", f"    image: {image}\n    digest: {DIGEST}\n"))
    rendering = render_matrix(load_matrix(pinned), ROOT)
    assert rendering.cells[0].stages["base"].startswith(f"FROM {image}@{DIGEST} AS base")
