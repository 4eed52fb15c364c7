"""Distinct RUN steps as BuildKit dedups them (epbuild/build/run_steps.py): a stage's first steps are shared by stages
that differ only in later lines, and never across stages whose parents or inputs differ."""

from __future__ import annotations

from pathlib import Path

from epbuild.build.run_steps import _instructions, distinct_run_steps, run_step_identities
from epbuild.cli import project

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = "examples/offline/matrix.yaml"


def cells() -> dict[str, object]:
    return {rc.cell.name: rc for rc in project.rendering(str(ROOT / OFFLINE)).cells}


def steps_of(rc: object, stage: str) -> list[str]:
    return [identity for name, identity in run_step_identities(rc) if name == stage]


def test_the_requirements_stage_is_shared_by_every_arch_of_one_base_and_the_compile_is_not() -> None:
    by_name = cells()
    gfx942, gfx950, trixie = by_name["gfx942-cx7-sid"], by_name["gfx950-cx7-sid"], by_name["gfx942-io-trixie"]
    a, b, t = (steps_of(rc, "mori-requirements") for rc in (gfx942, gfx950, trixie))
    assert len(a) == 1 and a == b  # pip install of the same wheelhouse on the same parent
    assert t != a  # another base: another parent and another wheelhouse
    compile_a, compile_b = steps_of(gfx942, "mori"), steps_of(gfx950, "mori")
    assert len(compile_a) == len(compile_b) == 1 and compile_a != compile_b  # MORI_GPU_ARCHS differs


def test_comments_do_not_make_steps_differ_and_continuations_stay_in_their_instruction() -> None:
    text = "FROM base AS x\n# about gfx942\nRUN a \\\n    && b\n# hadolint ignore=DL3003\nRUN c\n"
    assert _instructions(text) == ["FROM base AS x", "RUN a \\\n    && b", "RUN c"]
    assert _instructions(text.replace("gfx942", "gfx950")) == _instructions(text)


def test_distinct_steps_are_no_more_than_the_stages_runs_and_no_fewer_than_the_stages() -> None:
    from epbuild.model.stagegraph import stage_identities

    rendered = list(cells().values())
    steps = distinct_run_steps(rendered)
    stage_runs = {}
    for rc in rendered:
        for name, identity in stage_identities(rc).items():
            stage_runs[identity] = (name, rc.stages[name].count("\nRUN ") + rc.stages[name].startswith("RUN "))
    with_runs = {i: n for i, (name, n) in stage_runs.items() if n}
    assert len(with_runs) <= len(steps) <= sum(with_runs.values())
    # No step is shared across stages that differ (the requirements steps are stages of their own): so a fleet
    # that builds each distinct stage once executes each distinct step once (bench/fleet.py).
    assert len(steps) == sum(with_runs.values())
