"""Components come from folders: an extra folder a matrix names in `component_dirs` adds a component (its pin
model, stage, place in the graph and preflight hook) without touching epbuild/, and a broken folder is a clear
error naming the matrix key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from epbuild.inputs import preflight
from epbuild.model import stagegraph
from epbuild.model.cells import expand
from epbuild.model.matrix import load_matrix
from epbuild.model.plan import CellPlan
from epbuild.render.dockerfiles import render_cell
from epbuild.util.errors import MatrixError

SPEC = '''
from pathlib import Path
from epbuild.model.component import Component, Copy
from epbuild.model.pins import SourcePin


class GadgetPin(SourcePin):
    prefix: str = "/opt/gadget"


def refuse_short_commits(pin, cell):
    return [] if len(pin.commit) == 40 else [f"commit {pin.commit} is abbreviated; gadget needs all 40 digits"]


COMPONENT = Component(
    name="gadget", pin=GadgetPin, output=Copy(("{prefix}",)), after=("rocshmem",), uses=("nic.provider",),
    context=lambda stage: {"provider": stage.cell["nic.provider"]},
    preflight=refuse_short_commits, required=False, folder=Path(__file__).resolve().parent,
)
'''


def gadget_folder(root: Path, template: str = "RUN echo {{ provider }} > /opt/gadget\n") -> Path:
    folder = root / "extra" / "gadget"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(SPEC))
    (folder / "stage.Dockerfile.j2").write_text(template)
    return root / "extra"


def with_gadget(folder: Path, commit: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["component_dirs"] = [str(folder)]
        data["components"]["gadget"] = {"repo": "https://example.org/gadget.git", "commit": commit}
    return edit


def test_an_extra_folder_adds_a_component_to_the_graph(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    matrix = load_matrix(write_matrix(with_gadget(gadget_folder(tmp_path), "a" * 40))).model
    cells = {c.name: c for c in expand(matrix)}
    cx7 = render_cell(CellPlan(cells["gfx950-cx7"], matrix), "matrix.yaml")
    thor2 = render_cell(CellPlan(cells["gfx950-thor2"], matrix), "matrix.yaml")
    assert cx7.stages["gadget"].startswith("FROM rocshmem AS gadget\n") and "echo mlx5" in cx7.stages["gadget"]
    assert "echo bnxt_re" in thor2.stages["gadget"]
    assert "COPY --from=gadget /opt/gadget /opt/gadget" in cx7.dockerfile
    order = list(stagegraph.built_pins(cx7.plan))
    assert order.index("gadget") > order.index("rocshmem")
    assert preflight.problems([cx7.plan, thor2.plan]) == []


def test_a_component_preflight_stops_the_build_before_anything_runs(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    matrix = load_matrix(write_matrix(with_gadget(gadget_folder(tmp_path), "abcdef1"))).model
    plans = [CellPlan(c, matrix) for c in expand(matrix)]
    with pytest.raises(preflight.PreflightError, match="gfx942-cx7: gadget: commit abcdef1 is abbreviated"):
        preflight.check(plans)


def test_an_undeclared_cell_fact_is_refused(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = gadget_folder(tmp_path)
    spec = folder / "gadget" / "__init__.py"
    spec.write_text(spec.read_text().replace('stage.cell["nic.provider"]', 'stage.cell["nic"]'))
    matrix = load_matrix(write_matrix(with_gadget(folder, "a" * 40))).model
    with pytest.raises(Exception, match="reads cell fact 'nic', which its spec does not declare"):
        render_cell(CellPlan(expand(matrix)[0], matrix), "matrix.yaml")


def test_a_missing_component_folder_names_the_key(write_matrix, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_matrix(with_gadget(tmp_path / "nowhere", "a" * 40))
    with pytest.raises(MatrixError, match="component_dirs: component folder .*nowhere does not exist"):
        load_matrix(path)
