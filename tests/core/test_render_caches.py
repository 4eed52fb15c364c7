"""The render's memos (issue 25) never hand one cell what another's inputs made: each cell of a matrix renders
beside the others exactly as it does alone, with a matrix object (and so a memo) of its own; the pieces that
`final` and the outer Dockerfile are joined from give what their templates render for the cell; and a matrix
rendered under two labels names each in its header."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from epbuild.cli import project
from epbuild.model import stagegraph
from epbuild.model.matrix import load_matrix
from epbuild.model.plan import CellPlan
from epbuild.model.yamlfile import dump_yaml
from epbuild.render import bakefile, dockerfiles, final_stage
from epbuild.render.pieces import Pieces, holders

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = "examples/offline/matrix.yaml"
MATRICES = ["matrix.yaml", OFFLINE]


def renders_beside_as_alone(path: Path) -> list[CellPlan]:
    """Asserts that each cell of the matrix at `path` renders beside the others as it does alone (its Dockerfile,
    stage texts, recipe key and bake target); the plans of the cells rendered together."""
    loaded = load_matrix(path)
    rendering = dockerfiles.render_matrix(loaded, path.parent)
    bake = json.loads(rendering.bake)["target"]
    for rc in rendering.cells:
        alone = dockerfiles.render_cell(CellPlan(rc.cell, load_matrix(path).model), "matrix.yaml")
        assert (rc.dockerfile, rc.stages, rc.key) == (alone.dockerfile, alone.stages, alone.key), rc.cell.name
        assert bake[rc.cell.name] == bakefile.cell_target(alone, context_root="images"), rc.cell.name
        assert bake[bakefile.serving_target(rc.cell.name)]["contexts"] == bake[rc.cell.name]["contexts"]
    return [rc.plan for rc in rendering.cells]


@pytest.mark.parametrize("path", MATRICES)
def test_each_cell_renders_beside_the_others_as_it_does_alone(path: str) -> None:
    plans = renders_beside_as_alone(ROOT / path)
    # The cells differ in what the memos are keyed on, or this would prove little: the stages that apply, which
    # of them start from `vendor`, the NIC's vendor userspace.
    assert len({stagegraph.applied_names(p) for p in plans}) > 1
    assert len({from_vendor(p) for p in plans}) > 1
    assert len({p.vendor_digest for p in plans}) > 1


def test_cells_with_the_same_stages_but_not_the_same_vendor_render_as_alone(tmp_path: Path) -> None:
    """The offline example with thor2's rdma-core built from source and MoRI compiling only bnxt_re's library
    in: its io and thor2 cells have the same stages on the same base, but not the same vendor userspace, and only
    thor2's MoRI starts from `vendor`."""
    data = yaml.safe_load((ROOT / OFFLINE).read_text())
    data["nics"]["thor2"]["rdma_core"] = "source"
    data["components"]["mori"]["nic_build_flags"] = {"bnxt_re": "USE_BNXT"}
    path = tmp_path / "matrix.yaml"
    path.write_text(dump_yaml(data))
    plans = {(p.cell.arch, p.cell.nic, p.cell.base): p for p in renders_beside_as_alone(path)}
    io, thor2 = plans["gfx942", "io", "sid"], plans["gfx942", "thor2", "sid"]
    assert stagegraph.applied_names(io) == stagegraph.applied_names(thor2)
    assert from_vendor(io) != from_vendor(thor2)
    assert io.vendor_digest != thor2.vendor_digest


GADGET = """
from pathlib import Path
from epbuild.model.component import Component, Copy
from epbuild.model.pins import SourcePin

COMPONENT = Component(
    name="gadget", pin=SourcePin, output=Copy(("/opt/gadget",)), after=("rocshmem",), when={"nic.rdma_core": "source"},
    context=lambda stage: {}, required=False, folder=Path(__file__).resolve().parent,
)
"""


def test_cells_with_the_same_stage_above_final_but_not_the_same_copies_render_as_alone(
        write_matrix: Callable[..., Path], tmp_path: Path) -> None:
    """An extra component that applies only where rdma-core is built from source and leaves a file for `final`
    to copy: the io and thor2 cells both start `final` from `vendor`, but only io's copies the file."""
    folder = tmp_path / "extra" / "gadget"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(GADGET)
    (folder / "stage.Dockerfile.j2").write_text("RUN touch /opt/gadget\n")

    def edit(data: dict[str, Any]) -> None:
        data["component_dirs"] = [str(folder.parent)]
        data["components"]["gadget"] = {"repo": "https://example.org/gadget.git", "commit": "a" * 40}

    plans = {p.cell.nic: p for p in renders_beside_as_alone(write_matrix(edit)) if p.cell.arch == "gfx942"}
    io, thor2 = plans["io"], plans["thor2"]
    assert stagegraph.parents(io)["final"] == stagegraph.parents(thor2)["final"] == stagegraph.VENDOR
    assert ("gadget", "/opt/gadget") in stagegraph.copies(io)
    assert stagegraph.copies(thor2) == [c for c in stagegraph.copies(io) if c != ("gadget", "/opt/gadget")]


def test_cells_on_two_bases_one_pinned_by_digest_render_as_alone(write_matrix: Callable[..., Path]) -> None:
    """The recipe key takes the base's pinned digest (null where none is pinned), kept once per base."""
    def edit(data: dict[str, Any]) -> None:
        pinned = {**data["bases"]["rocm72"], "digest": "sha256:" + "5" * 64}
        data["bases"] = {"rocm72": data["bases"]["rocm72"], "pinned": pinned}
        data["axes"]["base"] = ["rocm72", "pinned"]

    plans = renders_beside_as_alone(write_matrix(edit))
    assert {p.base.digest for p in plans} == {None, "sha256:" + "5" * 64}


def from_vendor(plan: CellPlan) -> frozenset[str]:
    return frozenset(name for name, above in stagegraph.parents(plan).items() if above == stagegraph.VENDOR)


@pytest.mark.parametrize("path", MATRICES)
def test_the_joined_pieces_are_what_the_templates_render(path: str) -> None:
    rendering = project.rendering(path)
    label = str(rendering.matrix.path.relative_to(ROOT))
    for rc in rendering.cells:
        plan = rc.plan
        above = stagegraph.parent(stagegraph.stages_for(plan)[-1], plan) or dockerfiles.base_reference(plan)
        # The templates rendered through jinja for this cell alone, with its recipe key.
        assert rc.stages["final"] == final_stage._render(final_stage.context(plan, rc.key), above)
        assert rc.dockerfile == dockerfiles._outer(label, rc.cell.name, list(rc.stages.values()))
        # What the recipe key hashes for `final`: the keyless text, the template's with an empty recipe label.
        text = final_stage.FinalText(plan, above)
        assert text.text("") == final_stage._render(final_stage.context(plan, ""), above)
        assert text.text(rc.key) == rc.stages["final"]


def test_one_matrix_rendered_under_two_labels_names_each() -> None:
    matrix = project.load("matrix.yaml").model
    cell = project.rendering("matrix.yaml").cells[0].cell
    for label in ("matrix.yaml", "elsewhere/other matrix.yaml", "matrix.yaml"):
        rendered = dockerfiles.render_cell(CellPlan(cell, matrix), label)
        assert rendered.dockerfile.splitlines()[0].startswith(f"# Generated by epbuild from {label}, "), label


def test_pieces_refuse_a_placeholder_not_written_exactly_once() -> None:
    a, b = holders(2)
    assert Pieces.of(f"x{a}y{b}z", 2) is not None
    assert Pieces.of(f"x{a}y{a}z{b}", 2) is None  # repeated
    assert Pieces.of(f"x{a}y", 2) is None  # dropped
    assert Pieces.of(f"x{a.upper()}y{b}", 2) is None  # transformed


def test_pieces_join_values_in_the_order_the_text_holds_them() -> None:
    a, b, c = holders(3)
    cut = Pieces.of(f"<{c}|{a}|{b}>", 3)
    assert cut is not None
    assert cut.join(["A", "B", "C"]) == "<C|A|B>"
