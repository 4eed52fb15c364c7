"""Issue 14 items 3 and 8, with real builds: a failing cell is named with its stage and its own log whether it is
built alone or with others, keep-going builds each surviving cell once more at most, and `invoke test` checks the
image the build made (by ID) even after another checkout moved the shared tag."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from epbuild.build.bake_command import checkout_tag
from epbuild.offline import matrix_variant

from harness import ROOT, InvokeResult, invoke

# matrix_variant reads the stand-ins' commits.json: made here, never left to an earlier test.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

BROKEN_IMAGE = "epbuild-offline/broken"  # the name test_offline_build's broken-stand-in test builds under too


def broken_matrix(tmp_path: Path) -> str:
    """The offline example with DeepEP at its stand-in's `broken` commit: device code that fails for gfx942."""
    matrix = matrix_variant(tmp_path, broken=["deepep"], image_name=BROKEN_IMAGE)
    invoke("render", "--matrix", str(matrix), check=True)
    return str(matrix)


def bake_commands(result: InvokeResult) -> list[list[str]]:
    """The targets of every bake the run started, from its bake.log."""
    out = []
    for line in (result.run_dir / "bake.log").read_text().splitlines():
        _, sep, command = line.partition("$ docker buildx bake ")
        if sep:
            words = shlex.split(command)
            out.append([w for i, w in enumerate(words) if not w.startswith("-")
                        and not (i and words[i - 1] in ("--file", "--progress", "--metadata-file", "--builder", "--set"))])
    return out


def assert_failed_in_deepep(cell: dict[str, object], name: str) -> None:
    assert cell["cell"] == name and not cell["ok"], cell
    assert cell["failed_stage"] == "deepep", cell
    log = Path(str(cell["log"]))
    text = log.read_text()
    # The compiler's own complaint about the broken device code (the stand-in's #error) reaches the cell's log.
    assert "error: \"epbuild fixture: this commit breaks the gfx942 build on purpose\"" in text, text[-2000:]


def test_a_cell_built_alone_is_named_with_its_failing_stage(tmp_path: Path) -> None:
    result = invoke("build", "--matrix", broken_matrix(tmp_path), "--cell", "gfx942-thor2-sid", "--quiet")
    assert result.code == 1, result.out + result.err
    summary = result.summary
    (cell,) = summary["cells"]
    assert_failed_in_deepep(cell, "gfx942-thor2-sid")
    assert "without naming a failing stage" not in cell["error"]
    assert {step["target"] for step in summary["executed_run_steps"]} <= {"gfx942-thor2-sid"}
    assert f"(log: {cell['log']})" in result.out


def test_keep_going_builds_each_survivor_once_more_at_most(tmp_path: Path) -> None:
    cells = ["gfx942-cx7-sid", "gfx942-thor2-sid", "gfx950-cx7-sid"]
    result = invoke("build", "--matrix", broken_matrix(tmp_path), *[a for c in cells for a in ("--cell", c)],
                    "--quiet")
    assert result.code == 1, result.out + result.err
    by_name = {c["cell"]: c for c in result.summary["cells"]}
    assert by_name["gfx950-cx7-sid"]["ok"], by_name["gfx950-cx7-sid"]
    for name in ("gfx942-cx7-sid", "gfx942-thor2-sid"):
        assert_failed_in_deepep(by_name[name], name)
    bakes = bake_commands(result)
    assert bakes[0] == cells, bakes
    assert all(len(targets) == 1 for targets in bakes[1:]), bakes  # survivors alone: one failure cancels no other
    for name in cells:
        # Once more at most, besides one build again after the engine's own failure (tests/core/test_engine_retry.py).
        assert sum(name in targets for targets in bakes) <= 2 + bool(by_name[name]["retried_after"]), bakes


def image_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_test_checks_the_image_the_build_made_after_the_tag_moved(tmp_path: Path) -> None:
    # A name of this test's own, so moving its tag disturbs no other build sharing the engine.
    matrix = matrix_variant(tmp_path, image_name="epbuild-offline/buildrel-moved-tag")
    invoke("render", "--matrix", str(matrix), check=True)
    built = invoke("build", "--matrix", str(matrix), "--cell", "gfx950-cx7-sid", "--quiet", check=True)
    (cell,) = built.summary["cells"]
    tag = cell["tag"]
    assert cell["image_id"] == image_id(tag)
    # Another checkout builds the same cell into the same tag: here, one without rocSHMEM's library.
    other = subprocess.run(["docker", "build", "--quiet", "-t", tag, "-"], text=True, capture_output=True,
                           input=f"FROM {tag}\nRUN rm /opt/rocshmem/lib/librocshmem.a\n")
    assert other.returncode == 0, other.stderr
    try:
        moved_to = image_id(tag)
        assert moved_to != cell["image_id"]
        result = invoke("test", "--matrix", str(matrix), "--cell", "gfx950-cx7-sid", "--quiet")
        assert result.code == 0, result.out + result.err
        assert f"{tag} has moved since this checkout built gfx950-cx7-sid (it names {moved_to} now)" in result.out
        assert cell["image_id"] in result.out
    finally:
        subprocess.run(["docker", "image", "rm", tag, checkout_tag(tag, ROOT)], capture_output=True)
