"""NIC support read from the sources at their pins, before any build: the offline example's cells against the
stand-ins' trees (the MoRI stand-in's pinned commit models 2d02c6a9, without an ionic provider folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from epbuild.components.mori import PROVIDERS_DIR
from epbuild.inputs import nic_support
from epbuild.model.matrix import load_matrix
from epbuild.render import dockerfiles as render

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ROOT / "examples" / "offline" / "matrix.yaml"
COMPONENTS = ROOT / "epbuild" / "components"


def plans(matrix: Path):  # type: ignore[no-untyped-def]
    return [rc.plan for rc in render.render_matrix(load_matrix(matrix), ROOT).cells]


def trees(mori: Path) -> dict[str, Path]:
    return {"deepep": COMPONENTS / "deepep" / "fixture", "rocshmem": COMPONENTS / "rocshmem" / "fixture",
            "mori": mori}


def io_cells(matrix: Path) -> list[str]:
    return [rc.cell.name for rc in render.render_matrix(load_matrix(matrix), ROOT).cells if rc.cell.nic == "io"]


def test_a_mori_without_ionic_fails_every_io_cell_naming_the_nic() -> None:
    found = nic_support.problems(plans(OFFLINE), trees(COMPONENTS / "mori" / "fixture"))
    cells = io_cells(OFFLINE)
    assert cells and len(found) == len(cells), found
    # What the pin offers, as the folders of the stand-in say (listed here from the file system, not the hook).
    offered = sorted(p.name for p in (COMPONENTS / "mori" / "fixture" / PROVIDERS_DIR).iterdir())
    for cell, line in zip(cells, found):
        assert line.startswith(f"{cell}: mori at ") and "cannot drive NIC io" in line
        assert "needs provider 'ionic'" in line and ", ".join(offered) in line
        assert "nics.io.unsupported.mori" in line


def test_the_ionic_commit_drives_every_nic(tmp_path: Path) -> None:
    mori = tmp_path / "mori"
    shutil.copytree(COMPONENTS / "mori" / "fixture", mori)
    shutil.copytree(COMPONENTS / "mori" / "fixture@ionic" / "src", mori / "src", dirs_exist_ok=True)
    assert nic_support.problems(plans(OFFLINE), trees(mori)) == []


def test_an_accepted_nic_passes_and_deepep_choices_are_checked(tmp_path: Path) -> None:
    text = OFFLINE.read_text().replace("../../", f"{ROOT.as_uri()}/")
    accepted = text.replace("    flags: {deepep: io, rocshmem: GDA_IONIC}",
                            "    flags: {deepep: io, rocshmem: GDA_IONIC}\n"
                            "    unsupported: {mori: \"MoRI is not used on io hosts here\"}")
    assert accepted != text
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(accepted)
    assert nic_support.problems(plans(matrix), trees(COMPONENTS / "mori" / "fixture")) == []

    deepep = tmp_path / "deepep"
    shutil.copytree(COMPONENTS / "deepep" / "fixture", deepep)
    setup = deepep / "setup.py"
    assert '"io"' in setup.read_text()
    setup.write_text(setup.read_text().replace('"io"', '"io2"'))
    found = nic_support.problems(plans(matrix), {"deepep": deepep})
    assert found and all("deepep at" in line and "needs --nic value 'io'" in line for line in found)


@pytest.mark.parametrize("component", ["deepep", "rocshmem", "mori"])
def test_each_nic_component_reads_its_offer(component: str) -> None:
    from epbuild.model.component import discover

    registry = discover()
    pin = load_matrix(OFFLINE).model.components.pins()[component]
    offer = registry[component].nic_support(pin, trees(COMPONENTS / "mori" / "fixture")[component])
    assert offer is not None and offer.values
