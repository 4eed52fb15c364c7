"""What the invoke tasks hand to the package, tested without invoke: the cell selection, --cache-export, the pull
plan of a dry run, --image with several cells, and each run's replayable log."""

from __future__ import annotations

from pathlib import Path

import pytest

from epbuild.build.bake_command import cache_export
from epbuild.build.run_dir import replaying_runner
from epbuild.checks import imagetest
from epbuild.cli import project
from epbuild.release.dryrun import pull_plan
from epbuild.util.errors import EpbuildError

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = str(ROOT / "examples" / "offline" / "matrix.yaml")


def test_selection_keeps_matrix_order_and_only_what_was_asked() -> None:
    r, cells = project.selected(OFFLINE, ["gfx942"], ["thor2"], names=["gfx950-cx7-sid"])
    wanted = [rc.cell.name for rc in r.cells
              if (rc.cell.arch == "gfx942" and rc.cell.nic == "thor2") or rc.cell.name == "gfx950-cx7-sid"]
    assert [rc.cell.name for rc in cells] == wanted and len(wanted) == 3  # thor2 on sid and trixie, and cx7
    _, everything = project.selected(OFFLINE, [], [], everything=True)
    assert len(everything) == len(r.cells)


@pytest.mark.parametrize("value", ["all", "own", "none"])
def test_cache_export_takes_the_three_choices(value: str) -> None:
    assert cache_export(value) == value


def test_cache_export_refuses_anything_else() -> None:
    with pytest.raises(EpbuildError, match="--cache-export 'ALL'.*`all`, `own` or `none`"):
        cache_export("ALL")


def test_pull_plan_pulls_each_cell_then_says_what_builds() -> None:
    r, cells = project.selected(OFFLINE, [], [], names=["gfx950-cx7-sid", "gfx942-io-sid"])
    lines = pull_plan(r, cells, ROOT, "registry.example.org/team", build=True)
    pulls = [line for line in lines if line.startswith("docker pull")]
    assert [p.split()[-1].startswith("registry.example.org/team/") for p in pulls] == [True, True]
    assert lines[-1].startswith("# then each cell the registry has no image for is built")
    assert not pull_plan(r, cells, ROOT, None, build=False)[-1].startswith("# then")


def test_image_with_several_cells_is_refused_before_anything_runs() -> None:
    r, two = project.selected(OFFLINE, [], [], names=["gfx950-cx7-sid", "gfx942-io-sid"])
    with pytest.raises(EpbuildError, match="--image checks one cell, but the selection has 2: "):
        imagetest.check_cells(r, two, "some/image:tag", ROOT)


def test_replaying_runner_logs_each_command_in_a_new_run_folder(tmp_path: Path) -> None:
    runner, run_dir = replaying_runner(tmp_path, "publish")
    assert run_dir.parent == tmp_path / "build" / "logs" and run_dir.name.split("-")[1] == "publish"
    runner.run(["true", "it ran"])
    replay = (run_dir / "replay.sh").read_text()
    assert replay.splitlines()[-1] == "true 'it ran'"
