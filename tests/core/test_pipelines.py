"""The generated CI pipelines: valid for their tools, in step with the matrix, and shaped as promised.

Steps and jobs are found by the commands they run, not by their generated keys, so these tests hold whatever
the keys are called. Buildkite steps are read as an agent gets them: `buildkite-agent pipeline upload` expands
the whole file's parameters (POSIX parameter expansion, buildkite/interpolate; here by a real bash) before
Buildkite parses it; GitHub's `inputs.X || vars.X || 'd'` is evaluated the way Actions would.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from checkout_copy import copy_project
from dockerfile_stages import shared, stage_chains

ROOT = Path(__file__).resolve().parents[2]
BUILDKITE = Path("ci/pipeline.yml")
GITHUB = Path(".github/workflows/epbuild.yml")
FAT = "include: [{arch: gfx942+gfx950, nic: cx7}]"
# A digest for the base, so that the pipelines may publish: any well-formed one does, the pipelines never pull it.
BASE_DIGEST = "sha256:" + hashlib.sha256(b"a stand-in for rocm/vllm-dev:base").hexdigest()
PUBLISHING = (("  publish: false", "  publish: true"),
              ("    image: docker.io/rocm/vllm-dev:base\n", f"    image: docker.io/rocm/vllm-dev:base\n    digest: {BASE_DIGEST}\n"))
"""The matrix edits that make the pipelines publish: on, and the base pinned by digest."""


def invoke(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=project, capture_output=True, text=True,
                          check=False)


def edit_matrix(project: Path, old: str, new: str) -> None:
    path = project / "matrix.yaml"
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in the matrix exactly once"
    path.write_text(text.replace(old, new))


def variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """A copy of the project with the matrix edited and the pipelines re-rendered by `invoke ci`."""
    project = copy_project(tmp_path)
    for old, new in edits:
        edit_matrix(project, old, new)
    proc = invoke(project, "ci")
    assert proc.returncode == 0, proc.stderr
    return project


@pytest.fixture(scope="module")
def publishing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default matrix with publishing on (and its base pinned), rendered by `invoke ci`."""
    return variant(tmp_path_factory.mktemp("publishing"), *PUBLISHING)


# Buildkite: steps by what they run, and the pool an agent query resolves to in a given environment.

def agent_upload(text: str, env: dict[str, str]) -> str:
    """The pipeline text after `pipeline upload`'s expansion in `env`. bash's here-document does the same POSIX
    parameter expansion; Buildkite's `$$` escape is bash's `\\$`, and backslashes and backquotes, which Buildkite
    leaves alone, are escaped. An unset `${VAR:?}` fails the upload, as it fails bash."""
    # A command substitution is written $$( (the agent's shell runs it, not the upload).
    assert not re.search(r"(?<!\$)\$\(", text) and "EPBUILD_END_OF_PIPELINE" not in text
    escaped = text.replace("\\", "\\\\").replace("`", "\\`").replace("$$", "\\$")
    proc = subprocess.run(["bash", "-c", f"cat <<EPBUILD_END_OF_PIPELINE\n{escaped}EPBUILD_END_OF_PIPELINE\n"],
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"pipeline upload would fail: {proc.stderr}"
    return proc.stdout


def bk_steps(project: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The steps Buildkite gets from an agent with `env` that uploads the committed file."""
    steps: list[dict[str, Any]] = yaml.safe_load(agent_upload((project / BUILDKITE).read_text(), env or {}))["steps"]
    return steps


def bk_find(steps: list[dict[str, Any]], command: str) -> list[dict[str, Any]]:
    return [s for s in steps if re.search(rf"{re.escape(command)}( |$)", s["command"])]


def bk_on_branch(steps: list[dict[str, Any]], branch: str) -> list[dict[str, Any]]:
    """The steps a build of `branch` runs: Buildkite's `branches` is a space-separated list of glob patterns."""
    def runs(step: dict[str, Any]) -> bool:
        patterns = step.get("branches", "*")
        patterns = patterns.split() if isinstance(patterns, str) else patterns
        return any(fnmatch.fnmatchcase(branch, p) for p in patterns)

    return [s for s in steps if runs(s)]


def bk_gpu_pools(project: Path, arch: str, nic: str, env: dict[str, str] | None = None) -> list[str]:
    gpu = bk_find(bk_steps(project, env), f"invoke test --gpu --arch {arch} --nic {nic}")
    return sorted(s["agents"]["pool"] for s in gpu)


# GitHub Actions: jobs by what they run, and the runner labels a runs-on expression resolves to.

def gh_jobs(project: Path) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = yaml.safe_load((project / GITHUB).read_text())["jobs"]
    return jobs


def gh_run(job: dict[str, Any]) -> str:
    return " && ".join(step["run"] for step in job["steps"] if "run" in step)


def gh_find(jobs: dict[str, dict[str, Any]], command: str) -> dict[str, dict[str, Any]]:
    return {k: j for k, j in jobs.items() if re.search(rf"{re.escape(command)}( |$)", gh_run(j))}


def gh_resolve(value: str, inputs: dict[str, str], variables: dict[str, str]) -> str:
    def evaluate(m: re.Match[str]) -> str:
        for term in (t.strip() for t in m.group(1).split("||")):
            if term.startswith("'"):
                return term.strip("'")
            ctx, name = term.split(".")
            found = {"inputs": inputs, "vars": variables}[ctx].get(name)
            if found:
                return found
        raise AssertionError(f"no fallback in {value!r}")

    return re.sub(r"\$\{\{(.*?)\}\}", evaluate, value)


def gh_gpu_pools(project: Path, arch: str, nic: str, inputs: dict[str, str] | None = None,
                 variables: dict[str, str] | None = None) -> list[str]:
    gpu = gh_find(gh_jobs(project), f"invoke test --gpu --arch {arch} --nic {nic}")
    out = []
    for job in gpu.values():
        labels = [gh_resolve(label, inputs or {}, variables or {}) for label in job["runs-on"]]
        assert labels[0] == "self-hosted"
        out.extend(labels[1:])
    return sorted(out)


PUBLISH = 'invoke publish --digest "${EPBUILD_DIGEST:?set EPBUILD_DIGEST to the digest the build step pushed}"'
"""The publish command's start, as the agent's shell gets it: the digest the build step handed on."""

CELLS = [(a, n) for a in ("gfx942", "gfx950") for n in ("cx7", "io", "thor2")]


# (a) both files are valid for their tools, as committed and for a fat matrix with a moved pool.

@pytest.mark.parametrize("which", ["committed", "fat-and-moved", "publishing"])
def test_pipelines_validate_against_their_tools_schemas(tmp_path: Path, which: str, publishing: Path) -> None:
    project = {"committed": ROOT, "publishing": publishing}.get(which) or variant(
        tmp_path, ("include: []", FAT), ("agent_pool: mi355_2", "agent_pool: mi325_2"))
    for schema, path in (("vendor.buildkite", BUILDKITE), ("vendor.github-workflows", GITHUB)):
        proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                              cwd=project, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (project / path).read_text().startswith("# generated by epbuild")


# (b) drift: the committed files match the matrix, and an unrendered matrix edit fails the check.

def test_committed_pipelines_match_the_matrix() -> None:
    proc = invoke(ROOT, "ci", "--check")
    assert proc.returncode == 0, proc.stderr


def test_ci_check_fails_naming_both_files_after_an_unrendered_matrix_edit(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    edit_matrix(project, "exclude: []", "exclude: [{nic: thor2}]")
    proc = invoke(project, "ci", "--check")
    assert proc.returncode == 1
    assert f"{BUILDKITE}: differs" in proc.stderr and f"{GITHUB}: differs" in proc.stderr
    assert invoke(project, "ci").returncode == 0
    assert invoke(project, "ci", "--check").returncode == 0
    assert not bk_find(bk_steps(project), "--nic thor2") and not gh_find(gh_jobs(project), "--nic thor2")


def test_ci_check_fails_when_a_pipeline_is_missing(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / GITHUB).unlink()
    proc = invoke(project, "ci", "--check")
    assert proc.returncode == 1 and f"{GITHUB}: missing" in proc.stderr


# (c) moving gfx950's GPU tests to MI325 is one matrix line, and both pipelines follow it.

def test_moving_a_pool_is_one_matrix_line_that_both_pipelines_follow(tmp_path: Path) -> None:
    for arch, nic in CELLS:
        expected = ["mi325_2"] if arch == "gfx942" else ["mi355_2"]
        assert bk_gpu_pools(ROOT, arch, nic) == expected and gh_gpu_pools(ROOT, arch, nic) == expected
    project = variant(tmp_path, ("agent_pool: mi355_2", "agent_pool: mi325_2"))
    changed = [line for line in difflib.ndiff((ROOT / "matrix.yaml").read_text().splitlines(),
                                              (project / "matrix.yaml").read_text().splitlines())
               if line.startswith(("+ ", "- "))]
    assert changed == ["-     agent_pool: mi355_2", "+     agent_pool: mi325_2"]
    for arch, nic in CELLS:
        assert bk_gpu_pools(project, arch, nic) == ["mi325_2"], (arch, nic)
        assert gh_gpu_pools(project, arch, nic) == ["mi325_2"], (arch, nic)
    for path in (BUILDKITE, GITHUB):
        assert "mi355" not in (project / path).read_text().lower()


def test_a_pool_can_be_moved_for_one_run_without_editing_anything() -> None:
    moved = {"EPBUILD_POOL_MI355_2": "mi325_2"}
    for nic in ("cx7", "io", "thor2"):
        assert bk_gpu_pools(ROOT, "gfx950", nic, env=moved) == ["mi325_2"]
        assert gh_gpu_pools(ROOT, "gfx950", nic, inputs=moved) == ["mi325_2"]
        assert gh_gpu_pools(ROOT, "gfx950", nic, variables=moved) == ["mi325_2"]
        assert gh_gpu_pools(ROOT, "gfx950", nic, inputs={"EPBUILD_POOL_MI355_2": "mi355_8"},
                            variables=moved) == ["mi355_8"]  # a run's input beats the standing variable
        assert bk_gpu_pools(ROOT, "gfx942", nic, env=moved) == ["mi325_2"]  # other pools stay
    header = (ROOT / BUILDKITE).read_text().split("\nsteps:")[0]
    assert "EPBUILD_POOL_MI355_2" in header and "EPBUILD_POOL_MI325_2" in header
    workflow = yaml.safe_load((ROOT / GITHUB).read_text())
    assert set(workflow["on"]["workflow_dispatch"]["inputs"]) == {"EPBUILD_POOL_MI325_2", "EPBUILD_POOL_MI355_2",
                                                                  "EPBUILD_POOL_BUILD"}


def test_gpu_steps_ask_for_the_pools_gpu_count() -> None:
    steps = bk_find(bk_steps(ROOT), "invoke test --gpu")
    jobs = gh_find(gh_jobs(ROOT), "invoke test --gpu")
    # One GPU step per cell of the default matrix (each single-arch cell runs on its arch's pool).
    assert len(steps) == len(CELLS) and len(jobs) == len(CELLS), (len(steps), len(jobs))
    for step in steps:
        assert step["env"]["EPBUILD_NUM_GPUS"] == "2"
    for job in jobs.values():
        assert job["env"]["EPBUILD_NUM_GPUS"] == "2"


# (d) publish runs only on main, only after the drift check, the build's checks and every GPU test of its cell.

def test_buildkite_publishes_only_on_main_after_all_checks(publishing: Path) -> None:
    assert not bk_find(bk_steps(ROOT), PUBLISH)  # the default matrix's base has no digest pin
    steps = bk_steps(publishing)
    [check] = bk_find(steps, "invoke ci --check")
    assert "invoke render --check" in check["command"] and "pytest" in check["command"]
    feature = bk_on_branch(steps, "feature/x")
    assert not bk_find(feature, PUBLISH)
    assert len(feature) == len(steps) - len(CELLS)  # everything else runs on every branch
    assert len(bk_find(bk_on_branch(steps, "main"), PUBLISH)) == len(CELLS)
    for arch, nic in CELLS:
        cell = f"--arch {arch} --nic {nic}"
        [publish] = bk_find(steps, f"{PUBLISH} {cell}")
        [build] = bk_find(steps, f"invoke build {cell}")
        gpu = bk_find(steps, f"invoke test --gpu {cell}")
        assert publish["branches"] == "main"
        # The publish queue's agents alone hold the publish credentials; their hook (ci/buildkite/pre-command)
        # runs only main's commits. A pool override cannot move it.
        assert publish["agents"] == {"queue": "epbuild-publish"}
        assert publish["retry"] == {"automatic": False}
        assert publish["concurrency"] == 1 and publish["concurrency_method"] == "ordered"
        assert publish["concurrency_group"] == f"epbuild/publish/{arch}-{nic}"
        assert f"invoke test {cell}" in build["command"]
        assert build["agents"]["queue"] == "build"
        assert set(publish["depends_on"]) >= {check["key"], build["key"], *(g["key"] for g in gpu)}
        assert all(g["depends_on"] == build["key"] for g in gpu)
        assert "allow_dependency_failure" not in publish


def test_github_publishes_only_on_main_after_all_checks(publishing: Path) -> None:
    assert not gh_find(gh_jobs(ROOT), PUBLISH)
    jobs = gh_jobs(publishing)
    [check] = gh_find(jobs, "invoke ci --check")
    publishers = {k for k, j in jobs.items() if j.get("environment") == "epbuild-publish"}
    assert publishers == set(gh_find(jobs, PUBLISH))
    assert len(publishers) == len(CELLS)
    for arch, nic in CELLS:
        cell = f"--arch {arch} --nic {nic}"
        [job] = gh_find(jobs, f"{PUBLISH} {cell}").values()
        [build] = gh_find(jobs, f"invoke build {cell}")
        gpu = gh_find(jobs, f"invoke test --gpu {cell}")
        # No always()/failure(): needs must succeed; never for a pull request, whatever its branch.
        assert job["if"] == "github.ref == 'refs/heads/main' && github.event_name != 'pull_request'"
        assert job["environment"] == "epbuild-publish"
        assert job["concurrency"] == {"group": f"epbuild-publish-{arch}-{nic}", "cancel-in-progress": False}
        assert set(job["needs"]) >= {check, build, *gpu}
        assert all(g["needs"] == build for g in gpu.values())


# (e) a fat cell is tested on the hardware of each of its archs.

def test_fat_cell_gets_a_gpu_test_on_each_archs_pool(tmp_path: Path) -> None:
    project = variant(tmp_path, ("include: []", FAT), *PUBLISHING)
    assert bk_gpu_pools(project, "gfx942+gfx950", "cx7") == ["mi325_2", "mi355_2"]
    assert gh_gpu_pools(project, "gfx942+gfx950", "cx7") == ["mi325_2", "mi355_2"]
    steps = bk_steps(project)
    [publish] = bk_find(steps, f"{PUBLISH} --arch gfx942+gfx950 --nic cx7")
    assert {g["key"] for g in bk_find(steps, "invoke test --gpu --arch gfx942+gfx950")} <= set(publish["depends_on"])
    jobs = gh_jobs(project)
    [job] = gh_find(jobs, f"{PUBLISH} --arch gfx942+gfx950 --nic cx7").values()
    assert set(gh_find(jobs, "invoke test --gpu --arch gfx942+gfx950")) <= set(job["needs"])
    # Both archs on one pool: one test there, not the same test twice.
    both = variant(tmp_path / "moved", ("include: []", FAT), ("agent_pool: mi355_2", "agent_pool: mi325_2"))
    assert bk_gpu_pools(both, "gfx942+gfx950", "cx7") == ["mi325_2"]
    # Each GPU step asks its agent for the archs of the pool it was meant for: both, on the one pool.
    [gpu] = bk_find(bk_steps(both), "invoke test --gpu --arch gfx942+gfx950")
    assert "--gpu-arch gfx942 --gpu-arch gfx950" in gpu["command"]
    for step in bk_find(steps, "invoke test --gpu --arch gfx942+gfx950"):
        wanted = {"mi325_2": "gfx942", "mi355_2": "gfx950"}[step["agents"]["pool"]]
        assert re.findall(r"--gpu-arch (\S+)", step["command"]) == [wanted]


# (f) the fleet shares: each stage that cells share is one step, built once into the stage cache; cell steps import
# it and wait for exactly their own shared stages. Expectations from the stage graph README.md draws.

STAGE_STEP = re.compile(r"invoke build --cache (\"[^\"]+\") --stage (\S+) --cell (\S+)")


def shared_stage_steps(steps: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """key -> (stage, cell it is built as) of each Buildkite step that builds a stage into the cache."""
    out = {}
    for step in steps:
        found = STAGE_STEP.search(step["command"])
        if found:
            out[step["key"]] = (found.group(2), found.group(3))
    return out


def test_each_shared_stage_is_one_step_and_cells_wait_for_theirs() -> None:
    dockerfiles = {d.name: (d / "Dockerfile").read_text() for d in (ROOT / "images").iterdir() if d.is_dir()}
    holders = shared(dockerfiles)
    expected = Counter(chain.split("\0")[0] for chain, cells in holders.items() if len(cells) > 1)
    # The default matrix's six cells share their early stages: an empty count would make the loop below vacuous.
    assert len(dockerfiles) == len(CELLS) and expected, (sorted(dockerfiles), expected)
    steps = bk_steps(ROOT)
    stage_steps = shared_stage_steps(steps)
    assert Counter(stage for stage, _ in stage_steps.values()) == expected
    for name, text in dockerfiles.items():
        [build] = [s for s in steps if s["key"] == f"build-{name}"]
        assert "--cache-export own" in build["command"]
        needs = [stage_steps[k] for k in build["depends_on"] if k in stage_steps]
        chains = stage_chains(text)
        mine = {stage for stage, chain in chains.items() if len(holders[chain]) > 1}
        assert {stage for stage, _ in needs} == mine, name
        for stage, built_as in needs:  # built as a cell that holds exactly this cell's stage
            assert stage_chains(dockerfiles[built_as])[stage] == chains[stage]


def test_github_builds_on_self_hosted_runners_named_by_the_matrix(tmp_path: Path) -> None:
    def build_labels(project: Path, **ctx: dict[str, str]) -> set[tuple[str, ...]]:
        jobs = gh_jobs(project)
        return {tuple(gh_resolve(label, ctx.get("inputs", {}), ctx.get("variables", {})) for label in job["runs-on"])
                for job in jobs.values() if re.search(r"invoke (build|publish) ", gh_run(job))}

    assert build_labels(ROOT) == {("self-hosted", "build")}
    assert build_labels(ROOT, inputs={"EPBUILD_POOL_BUILD": "big-disk"}) == {("self-hosted", "big-disk")}
    project = variant(tmp_path, ("  build_pool: build", "  build_pool: epyc-96"))
    assert build_labels(project) == {("self-hosted", "epyc-96")}
    assert {s["agents"]["queue"] for s in bk_steps(project) if "queue" in s["agents"]} == {"epyc-96"}
    assert {s["agents"]["queue"] for s in bk_steps(project, {"EPBUILD_POOL_EPYC_96": "x"})
            if "queue" in s["agents"]} == {"x"}


def test_an_odd_matrix_path_reaches_every_command_quoted(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    odd = project / "odd dir" / "m;x.yaml"
    odd.parent.mkdir()
    odd.write_text((project / "matrix.yaml").read_text().replace("../matrix.schema.json", "../../matrix.schema.json"))
    proc = invoke(project, "ci", "--matrix", "odd dir/m;x.yaml")
    assert proc.returncode == 0, proc.stderr
    commands = [s["command"] for s in bk_steps(project / "odd dir")]
    commands += [gh_run(j) for j in gh_jobs(project / "odd dir").values()]
    assert commands
    for command in commands:
        # What the agent's shell sees: Buildkite's $$ is one $; each --matrix is one word naming the file.
        words = shlex.split(command.replace("$$", "$"))
        matrices = [words[i + 1] for i, word in enumerate(words) if word == "--matrix"]
        assert matrices and set(matrices) == {"odd dir/m;x.yaml"}, command
        assert subprocess.run(["bash", "-n", "-c", command.replace("$$", "$")]).returncode == 0


# (f) the base axis: with a second base every cell's steps name their base, and each cell is its own build.

def test_a_second_base_gives_each_cell_steps_of_its_own(tmp_path: Path) -> None:
    project = variant(tmp_path, ("  base: [rocm72]", "  base: [rocm72, rocm70]"),
                      ("bases:\n", "bases:\n  rocm70:\n    image: docker.io/rocm/vllm-dev:base-7.0\n"
                                   f"    digest: {BASE_DIGEST}\n    rocm_version: \"7.0\"\n"), *PUBLISHING)
    steps = bk_steps(project)
    for base in ("rocm72", "rocm70"):
        [build] = bk_find(steps, f"invoke build --arch gfx950 --nic cx7 --base {base}")
        assert f"invoke test --arch gfx950 --nic cx7 --base {base}" in build["command"]
        assert f"build gfx950-cx7-{base}" in build["label"]
        [publish] = bk_find(steps, f"{PUBLISH} --arch gfx950 --nic cx7 --base {base}")
        assert build["key"] in publish["depends_on"]
        assert bk_find(steps, f"invoke test --gpu --arch gfx950 --nic cx7 --base {base}")
    jobs = gh_jobs(project)
    assert len(gh_find(jobs, "invoke build --arch")) == 12


def test_the_gpu_count_follows_the_matrix(tmp_path: Path) -> None:
    project = variant(tmp_path, ("    agent_pool: mi355_2\n    gpu_count: 2", "    agent_pool: mi355_2\n    gpu_count: 8"))
    for arch, count in (("gfx950", "8"), ("gfx942", "2")):
        steps = bk_find(bk_steps(project), f"invoke test --gpu --arch {arch}")
        assert len(steps) == 3, f"{arch}: expected one GPU step per NIC, found {len(steps)}"  # cx7, io, thor2
        assert {s["env"]["EPBUILD_NUM_GPUS"] for s in steps} == {count}, arch
    for arch, count in (("gfx950", "8"), ("gfx942", "2")):
        jobs = gh_find(gh_jobs(project), f"invoke test --gpu --arch {arch}").values()
        assert jobs and {j["env"]["EPBUILD_NUM_GPUS"] for j in jobs} == {count}, arch
