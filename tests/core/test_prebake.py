"""The pre-bake steps' runner (epbuild/build/prebake.py): a step that could not run is reported "not checked: <why>",
never ok, and a build refuses it; nothing runs after a step that failed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from epbuild.build import prebake
from epbuild.build.prebake_checks import NotChecked
from epbuild.build.source_trees import Scope, Trees
from epbuild.components import vllm
from epbuild.model.matrix import load_matrix
from epbuild.render.dockerfiles import render_matrix
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import source_dir

ROOT = Path(__file__).resolve().parents[2]
ABSENT_BASE = "epbuild-offline/base:absent-prebake-test"


def scope_of(tmp_path: Path, text: str, pull_bases: bool) -> Scope:
    """vLLM's stand-in in the cell gfx950-cx7-sid of the offline example as `text` has it (loaded beside the
    example, so its relative paths hold), exported where the fetch puts it."""
    path = ROOT / "examples" / "offline" / f".test-prebake-{os.getpid()}.yaml"
    path.write_text(text)
    try:
        rendering = render_matrix(load_matrix(path), ROOT)
    finally:
        path.unlink()
    cells = [rc for rc in rendering.cells if rc.cell.name == "gfx950-cx7-sid"]
    root = tmp_path / "root"
    shutil.copytree(vllm.COMPONENT.fixture, root / source_dir("vllm", cells[0].plan.pins["vllm"].commit))
    return Scope(rendering, cells, root, Runner(), {}, Trees().by_component(root, cells), frozenset({"vllm"}),
                 pull_bases)


@pytest.mark.docker
def test_a_wheelhouse_for_a_base_the_engine_lacks_is_not_checked_and_never_ok(tmp_path: Path) -> None:
    """bump does not pull bases: with a base image the engine has not got (asked of the real engine), the
    wheelhouse step says so, and a build would refuse to go on without it."""
    text = (ROOT / "examples" / "offline" / "matrix.yaml").read_text()
    text = text.replace("image: epbuild-offline/base:sid-hip-ref-mpi-torchhip-rust-autotools", f"image: {ABSENT_BASE}")
    assert ABSENT_BASE in text
    scope = scope_of(tmp_path, text, pull_bases=False)
    report = prebake.run(scope, [s for s in prebake.STEPS if s.name == "wheelhouse"])
    assert report.lines()[0].startswith(f"wheelhouse: not checked: vllm for sid: it is resolved against the base's "
                                        f"own distributions, and the engine has no {ABSENT_BASE}"), report.lines()
    assert report.failed is None and [o.step for o in report.not_checked] == ["wheelhouse"]
    with pytest.raises(NotChecked):
        report.raise_for_build()


def test_nothing_runs_after_a_step_that_did_not_pass(tmp_path: Path) -> None:
    ran: list[str] = []

    def step(name: str, outcome: str) -> prebake.Step:
        def run(scope: Scope) -> str:
            ran.append(name)
            if outcome == "unreachable":
                raise NotChecked("the index cannot be reached")
            if outcome == "refused":
                raise EpbuildError("refused\nsecond line")
            return outcome
        return prebake.Step(name, run)

    scope = Scope(None, [], tmp_path, Runner(), {}, {})  # type: ignore[arg-type]
    report = prebake.run(scope, [step("a", "2 cell(s)"), step("b", ""), step("c", "refused"), step("d", "x")])
    assert ran == ["a", "b", "c"]
    assert report.lines() == ["a: ok: 2 cell(s)", "b: nothing to check", "c: FAILED", "  refused", "  second line",
                              "d: not checked: `c` did not pass"]
    with pytest.raises(EpbuildError, match="refused"):
        report.raise_for_build()
    ran.clear()
    # A step that could not run says nothing of the trees: the others still run, and a build still refuses it.
    report = prebake.run(scope, [step("a", "unreachable"), step("b", "x"), step("c", "refused"), step("d", "x")])
    assert ran == ["a", "b", "c"] and report.lines() == [
        "a: not checked: the index cannot be reached", "b: ok: x", "c: FAILED", "  refused", "  second line",
        "d: not checked: `c` did not pass"]
    with pytest.raises(NotChecked):
        report.raise_for_build()
