"""`invoke pins` on the offline example: the stand-in vLLM's reference Dockerfiles at the vLLM pin against the
matrix; its `reference-moved` commit moves DeepEP's pin and adds a flag, which `--check` reports and `--write`
applies with the matrix's comments kept."""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.model.component import discover
from epbuild.model.matrix import load_matrix
from epbuild.offline import REPOS_DIR, ensure_fixture_repos
from epbuild.offline.settings import FIXTURES_DIR

from harness import ROOT, offline_example_copy

OFFLINE = ROOT / "examples" / "offline" / "matrix.yaml"

# The stand-in repositories are made on first use, and rdma-core's among them is Debian's source package, fetched
# through a debootstrapped base in a container: every test here needs the engine and the network.
pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def commits() -> dict[str, dict[str, str]]:
    ensure_fixture_repos(REPOS_DIR, fixtures_dir=FIXTURES_DIR, registry=discover())
    return {name: entry["commits"] for name, entry in json.loads((REPOS_DIR / "commits.json").read_text()).items()}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture
def moved(tmp_path: Path, commits: dict[str, dict[str, str]]) -> Path:
    """A copy of the offline example, laid out as in the repository, whose vLLM pin is the stand-in's
    `reference-moved` commit."""
    text = OFFLINE.read_text()
    pinned, moved_vllm = commits["vllm"]["pinned"], commits["vllm"]["reference-moved"]
    assert f"commit: {pinned}" in text
    matrix = offline_example_copy(tmp_path, text.replace(f"commit: {pinned}", f"commit: {moved_vllm}"))
    assert run("render", "--matrix", str(matrix)).returncode == 0
    return matrix


def test_the_offline_example_has_no_unexplained_difference(commits: dict[str, dict[str, str]]) -> None:
    proc = run("pins", "--check", "--matrix", str(OFFLINE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("no unexplained difference")
    # The MoRI pin differs from the stand-in reference's on purpose, and says why.
    mori = next(line for line in proc.stdout.splitlines() if line.lstrip("~ ").startswith("mori pin"))
    assert mori.startswith("~") and commits["mori"]["pinned"][:12] in mori
    # UCX and NIXL (issue 23): their pins from stage build_nixl, resolved through the stand-in repositories, and
    # their build options flag by flag.
    lines = {line.split()[0] + " " + line.split()[1]: line for line in proc.stdout.splitlines()
             if line.startswith(("  ucx ", "  nixl "))}
    for component in ("ucx", "nixl"):
        assert f"fixture/pinned = {commits[component]['pinned'][:12]}" in lines[f"{component} pin"], proc.stdout
    assert "ucx --with-verbs" in lines and "nixl -Dwheel_variant" in lines, proc.stdout


def test_a_moved_reference_is_reported_and_written_with_comments_kept(
        moved: Path, commits: dict[str, dict[str, str]]) -> None:
    before = moved.read_text()
    check = run("pins", "--check", "--matrix", str(moved))
    assert check.returncode == 1, check.stdout + check.stderr
    differs = [line for line in check.stdout.splitlines() if line.startswith("!")]
    assert len(differs) == 2, check.stdout
    assert differs[0].split()[1:3] == ["deepep", "pin"] and commits["deepep"]["fnuz-max"][:12] in differs[0]
    assert differs[1].split()[1:4] == ["deepep", "--rocm-gfx942-fp8-fnuz-max", "-"] and " 224 " in differs[1]
    assert "differs from the reference" in check.stderr

    written = run("pins", "--write", "--matrix", str(moved))
    assert written.returncode == 0, written.stdout + written.stderr
    after = moved.read_text()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed == [f"-     commit: {commits['deepep']['pinned']}", f"+     commit: {commits['deepep']['fnuz-max']}",
                       "+     gfx942_fp8_fnuz_max: 224"]
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and comments == [line for line in after.splitlines() if line.lstrip().startswith("#")]
    deepep = load_matrix(moved).model.components.deepep
    assert deepep.commit == commits["deepep"]["fnuz-max"] and deepep.gfx942_fp8_fnuz_max == 224
    assert run("pins", "--check", "--matrix", str(moved)).returncode == 0
    assert run("render", "--check", "--matrix", str(moved)).returncode == 0


def test_bump_of_vllm_shows_the_reference_beside_its_plan(tmp_path: Path, commits: dict[str, dict[str, str]]) -> None:
    matrix = offline_example_copy(tmp_path)
    assert run("render", "--matrix", str(matrix)).returncode == 0
    proc = run("bump", "vllm", "fixture/reference-moved", "--dry-run", "--matrix", str(matrix))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.index("rebuild plan") < out.index("the reference at the new pin")
    shown = out.split("the reference at the new pin")[1]
    assert "! deepep pin" in shown and commits["deepep"]["fnuz-max"][:12] in shown
    assert "! deepep --rocm-gfx942-fp8-fnuz-max" in shown
