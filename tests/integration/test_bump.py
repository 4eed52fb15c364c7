"""`invoke bump` on the offline example: deepep moves to its stand-in's `moved` commit by branch name, and a commit
that lacks a flag the matrix asks for is refused by the same pre-bake steps `invoke build` runs."""

from __future__ import annotations

import difflib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.build import flow as builder
from epbuild.build import prebake
from epbuild.build.bake_command import BuildOptions
from epbuild.build.source_trees import Scope
from epbuild.model.component import discover
from epbuild.model.matrix import load_matrix
from epbuild.offline import REPOS_DIR, ensure_fixture_repos
from epbuild.offline.settings import FIXTURES_DIR
from epbuild.pinning import bump as bumper
from epbuild.render.dockerfiles import render_matrix
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

from harness import ROOT, invoke_in, offline_example_copy

BRANCH = "fixture/moved"
# bump prepares the offline example as a build does (its vendor repository is made in a container).
pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stand_in_commits() -> dict[str, dict[str, str]]:
    ensure_fixture_repos(REPOS_DIR, fixtures_dir=FIXTURES_DIR, registry=discover())
    return {name: entry["commits"] for name, entry in json.loads((REPOS_DIR / "commits.json").read_text()).items()}


@pytest.fixture
def example(tmp_path: Path, stand_in_commits: dict[str, dict[str, str]]) -> Path:
    """A copy of the offline example laid out as in the repository, so its relative repository paths hold."""
    matrix = offline_example_copy(tmp_path)
    invoke("render", "--matrix", str(matrix))
    return matrix


def invoke(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bump_by_branch_rewrites_the_pin_only_and_plans_deepep_and_final(
        example: Path, stand_in_commits: dict[str, dict[str, str]]) -> None:
    before = example.read_text()
    moved = stand_in_commits["deepep"]["moved"]
    out = invoke("bump", "deepep", BRANCH, "--matrix", str(example))

    after = example.read_text()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed == [f"-     commit: {stand_in_commits['deepep']['pinned']}", f"+     commit: {moved}"]
    assert load_matrix(example).model.components.deepep.commit == moved
    invoke("render", "--check", "--matrix", str(example))

    assert f"-> {moved} (branch {BRANCH})" in out
    assert "upstream log: 1 commit(s)" in out and "deepep: move the revision string" in out
    plan = dict(re.findall(r"^  (\S+): (.*)$", out.split("rebuild plan")[1].split("checks of")[0], re.M))
    listed = json.loads(invoke("matrix", "--json", "--matrix", str(example)))["cells"]
    assert set(plan) == {c["cell"] for c in listed} and len(plan) > 1
    for cell, stages in plan.items():
        assert re.findall(r"(\w[\w-]*) \(", stages) == ["deepep", "final"], (cell, stages)


def test_dry_run_changes_nothing(example: Path) -> None:
    before = snapshot(example.parent)
    out = invoke("bump", "deepep", BRANCH, "--matrix", str(example), "--dry-run")
    assert "dry run: nothing written" in out
    assert snapshot(example.parent) == before


def test_the_plan_takes_durations_from_the_last_build_that_ran_the_stage(example: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    for stamp, seconds in (("20260101T000000Z", 99.0), ("20260102T000000Z", 42.0)):
        run = root / "build" / "logs" / f"{stamp}-build-1"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"executed_run_steps": [
            {"target": "gfx950-cx7-sid", "stage": "deepep", "op": "RUN python3 setup.py", "seconds": seconds}]}))
    result = bumper.bump(load_matrix(example), "deepep", BRANCH, root, {}, dry_run=True)
    report = result.report()
    assert "gfx950-cx7-sid: deepep (42s last time), final (no log)" in report
    assert "gfx942-cx7-sid: deepep (no log), final (no log)" in report


def test_an_unknown_ref_and_an_unknown_component_are_errors(example: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "invoke", "bump", "deepep", "no-such-branch", "--matrix",
                           str(example)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "'no-such-branch' is not a branch, tag or commit of" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "invoke", "bump", "deepEP", "main", "--matrix", str(example)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "no component 'deepEP'" in proc.stderr


def test_bump_refuses_a_pin_that_lacks_a_required_commit(example: Path,
                                                         stand_in_commits: dict[str, dict[str, str]]) -> None:
    moved = stand_in_commits["deepep"]["moved"]
    text = example.read_text().replace("    explicit_ctx: true\n", (
        f"    explicit_ctx: true\n    requires:\n      - commit: {moved}\n        reason: the moved revision string\n"))
    example.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "invoke", "bump", "deepep", "fixture/pinned", "--matrix",
                           str(example)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"lacks required commit(s): {moved} (the moved revision string)" in proc.stderr
    assert example.read_text() == text


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_pin_without_a_flag_the_matrix_asks_for_is_refused_and_nothing_written(
        example: Path, stand_in_commits: dict[str, dict[str, str]], dry_run: bool) -> None:
    """The stand-in's no-explicit-ctx commit has setup.py@5d90af8b's options; the example asks for
    --rocm-explicit-ctx (components.deepep.explicit_ctx: true), which `invoke build` refuses before bake."""
    before = snapshot(example.parent)
    proc = subprocess.run([sys.executable, "-m", "invoke", "bump", "deepep", "fixture/no-explicit-ctx", "--matrix",
                           str(example), *(["--dry-run"] if dry_run else [])], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout
    for part in (stand_in_commits["deepep"]["no-explicit-ctx"][:12], "interface: FAILED",
                 "setup.py has no option --rocm-explicit-ctx", "components.deepep.explicit_ctx",
                 "the matrix was left as it was"):
        assert part in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert snapshot(example.parent) == before


def test_a_pin_with_every_flag_passes_every_check_a_build_runs(example: Path) -> None:
    out = invoke("bump", "deepep", BRANCH, "--matrix", str(example), "--dry-run")
    steps = out.split("before bake, in the")[1].split("dry run: nothing written")[0]
    assert "interface: ok: 9 cell(s), deepep" in steps and "git HEAD: ok" in steps
    assert "FAILED" not in steps and "not checked" not in steps


def test_bump_and_build_run_the_same_pre_bake_steps(example: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Both call prebake.run over prebake.STEPS: every step, and a step added to the list, runs in both."""
    calls: list[tuple[str, str]] = []

    def recorded(step: prebake.Step, who: list[str]) -> prebake.Step:
        def run(scope: Scope) -> str:
            calls.append((who[0], step.name))
            return step.run(scope)
        return prebake.Step(step.name, run)

    def canary(scope: Scope) -> str:
        raise EpbuildError("the canary check refuses " + ", ".join(sorted({rc.cell.name for rc in scope.cells})))

    who = ["bump"]
    monkeypatch.setattr(prebake, "STEPS", [recorded(s, who) for s in prebake.STEPS]
                        + [recorded(prebake.Step("canary", canary), who)])
    with pytest.raises(bumper.BumpError) as bumped:
        bumper.bump(load_matrix(example), "deepep", BRANCH, tmp_path, {}, dry_run=True)
    assert "canary: FAILED" in str(bumped.value) and "the canary check refuses gfx942-cx7-sid" in str(bumped.value)

    who[0] = "build"
    rendering = render_matrix(load_matrix(example), ROOT)  # as `invoke render` rendered it
    cells = [rc for rc in rendering.cells if rc.cell.name == "gfx950-cx7-sid"]
    with pytest.raises(EpbuildError, match="the canary check refuses gfx950-cx7-sid"):
        builder.build(rendering, cells, ROOT, BuildOptions(), Runner(dry_run=True, out=io.StringIO()))
    names = [s.name for s in prebake.STEPS]
    assert [name for by, name in calls if by == "bump"] == names
    assert [name for by, name in calls if by == "build"] == names


def test_the_readme_example_works_on_a_fresh_clone(fresh_clone: Path) -> None:
    """README's `invoke bump deepep fixture/moved --matrix examples/offline/matrix.yaml --dry-run`, where nothing
    was prepared yet: bump prepares the stand-in repositories first, as a build does."""
    [example] = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()
                 if line.strip().startswith("invoke bump deepep fixture/moved")]
    done = invoke_in(fresh_clone, *example.split()[1:])
    assert done.code == 0, done.out[-3000:] + done.err[-3000:]
    assert "-> " in done.out and "(branch fixture/moved)" in done.out and "interface: ok" in done.out
    assert "dry run: nothing written" in done.out
