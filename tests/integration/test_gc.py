"""`invoke gc` against real builds: after a pin move it frees the old pin's data (listed first, removed only with
--yes) and keeps everything a rebuild of the current matrix needs, so the rebuild right after runs no RUN step,
fetches and exports nothing and loads nothing. The cell is the example's gfx950-cx7-sid on sid; the pin moved is
DeepEP's (its stand-in's `moved` commit), so only its stage and `final` are built anew."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from epbuild.model.matrix import load_matrix
from epbuild.offline import matrix_variant

from harness import ROOT, invoke

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

CELL = "gfx950-cx7-sid"


def test_gc_after_a_pin_move_frees_the_old_pin_and_a_rebuild_runs_nothing(tmp_path: Path,
                                                                           docker_engine: None) -> None:
    invoke("sources", "--matrix", "examples/offline/matrix.yaml", "--cell", CELL, check=True)  # prepares the repos
    before = matrix_variant(tmp_path / "before", image_name="epbuild-gc/local")
    moved = matrix_variant(tmp_path / "moved", moved=["deepep"], image_name="epbuild-gc/local")
    for matrix in (before, moved):
        invoke("render", "--matrix", str(matrix), check=True)
    old, new = (load_matrix(m).model.components.deepep.commit for m in (before, moved))
    assert old != new
    invoke("build", "--matrix", str(before), "--cell", CELL, "--quiet", check=True)
    invoke("build", "--matrix", str(moved), "--cell", CELL, "--quiet", check=True)
    old_export, new_export = (ROOT / "build" / "sources" / f"deepep-{c}" for c in (old, new))
    assert old_export.is_dir() and new_export.is_dir()

    listed = invoke("gc", "--matrix", str(moved), check=True)
    assert f"build/sources/deepep-{old}" in listed.out and "would free" in listed.out
    assert f"build/sources/deepep-{new}" not in listed.out
    assert old_export.is_dir()  # a dry run by default

    done = invoke("gc", "--matrix", str(moved), "--yes", check=True)
    freed = re.search(r"^freed .* \((\d+) bytes\)$", done.out, re.M)
    assert freed and int(freed.group(1)) > 0, done.out
    assert not old_export.exists() and not Path(f"{old_export}.export.json").exists()
    assert new_export.is_dir() and Path(f"{new_export}.export.json").is_file()

    again = invoke("build", "--matrix", str(moved), "--cell", CELL, "--quiet", check=True)
    assert again.summary["executed_run_steps"] == []
    replay = (again.run_dir / "replay.sh").read_text()
    # Nothing fetched or exported again, nothing loaded: the image is only tagged.
    assert " fetch " not in replay and " archive " not in replay and "docker load" not in replay, replay
    assert invoke("gc", "--matrix", str(moved), check=True).out.strip().endswith("nothing to remove")
