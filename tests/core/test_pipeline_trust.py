"""What the generated pipelines let through (issue #28): the digest the build step pushed is the one the GPU tests
check and the publish step publishes; each kind of step holds only its own credentials; forks never reach
self-hosted runners; actions are pinned; every step has a time limit, a retry rule and its logs uploaded.

The hand-off is checked by running the steps' own shell commands, as an agent would, with `invoke` and
`buildkite-agent` replaced by recorders: what one step hands on is what the next one is given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_pipelines import (
    BASE_DIGEST,
    BUILDKITE,
    CELLS,
    GITHUB,
    PUBLISH,
    PUBLISHING,
    ROOT,
    bk_find,
    bk_steps,
    gh_find,
    gh_jobs,
    invoke,
    variant,
)

from epbuild.checks.imagetest import SYSFS_ENV, require_archs
from epbuild.ci.pipeline_graph import pipeline_graph
from epbuild.cli import project
from epbuild.model.stagegraph import stage_identities
from epbuild.util.errors import EpbuildError

SETUP = "./ci/setup.sh && . build/ci-venv/bin/activate && "
BUILT = "sha256:" + "d1" * 32
"""The digest the recording `invoke publish --staging` says it pushed."""

RECORDER = r"""#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
log = Path(os.environ["RECORD"])
with log.open("a") as f:
    f.write(json.dumps({"args": args, "user": os.environ.get("EPBUILD_REGISTRY_USER"),
                        "password": os.environ.get("EPBUILD_REGISTRY_PASSWORD")}) + "\n")
if "--digest-file" in args:
    out = Path(args[args.index("--digest-file") + 1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(os.environ["BUILT"] + "\n")
"""

AGENT = r"""#!/usr/bin/env bash
# buildkite-agent meta-data set KEY (value on stdin) / get KEY, kept in $METADATA
set -euo pipefail
[ "$1 $2" = "meta-data set" ] && { cat > "$METADATA/$3"; exit 0; }
[ "$1 $2" = "meta-data get" ] && { cat "$METADATA/$3"; exit 0; }
exit 1
"""

LOGINS = {"CACHE": ("cache-user", "cache-pw"), "STAGING": ("staging-user", "staging-pw"),
          "STAGING_READ": ("reader", "reader-pw"), "PUBLISH": ("publisher", "publisher-pw")}


@pytest.fixture(scope="module")
def publishing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return variant(tmp_path_factory.mktemp("publishing"), *PUBLISHING)


class Agent:
    """Runs step commands in a scratch folder with recording `invoke` and `buildkite-agent`."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name, text in (("invoke", RECORDER), ("buildkite-agent", AGENT)):
            (self.bin / name).write_text(text.replace("/usr/bin/env python3", sys.executable, 1))
            (self.bin / name).chmod(0o755)
        (tmp / "metadata").mkdir()
        self.record = tmp / "record.jsonl"

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "RECORD": str(self.record), "BUILT": BUILT,
               "METADATA": str(self.tmp / "metadata"), "EPBUILD_CI_REGISTRY": "staging.example/main",
               "EPBUILD_CI_CACHE": "staging.example/main/epbuild-cache"}
        for login, (user, password) in LOGINS.items():
            env[f"EPBUILD_{login}_USER"], env[f"EPBUILD_{login}_PASSWORD"] = user, password
        return {**env, **extra}

    def run(self, command: str, **env: str) -> subprocess.CompletedProcess[str]:
        assert command.startswith(SETUP)
        self.record.write_text("")
        return subprocess.run(["bash", "-e", "-c", command[len(SETUP):]], cwd=self.tmp, env=self.env(**env),
                              capture_output=True, text=True, check=False)

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.record.read_text().splitlines()]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def check_handoff(calls_build: list[dict[str, Any]], calls_gpu: list[dict[str, Any]],
                  calls_publish: list[dict[str, Any]]) -> None:
    """The build step pushes to staging with the staging login; GPU and publish pull exactly the digest it wrote,
    test and publish that image by digest, and use their own logins."""
    build, test, stage = calls_build
    assert build["args"][0] == "build" and build["user"] == "cache-user"
    assert flag(build["args"], "--cache") == "staging.example/main/epbuild-cache"
    assert test["args"][0] == "test" and test["user"] is None  # the static checks need no registry
    assert stage["args"][:2] == ["publish", "--registry"] and "--staging" in stage["args"]
    assert flag(stage["args"], "--registry") == "staging.example/main" and stage["user"] == "staging-user"
    pull, sources, gpu = calls_gpu
    assert pull["args"][0] == "pull" and flag(pull["args"], "--digest") == BUILT and pull["user"] == "reader"
    assert flag(pull["args"], "--registry") == "staging.example/main"
    assert sources["args"][0] == "sources" and sources["user"] is None
    assert gpu["args"][:2] == ["test", "--gpu"] and flag(gpu["args"], "--image") == BUILT and gpu["user"] is None
    pull, publish = calls_publish
    assert pull["args"][0] == "pull" and flag(pull["args"], "--digest") == BUILT and pull["user"] == "reader"
    assert publish["args"][0] == "publish" and flag(publish["args"], "--digest") == BUILT
    assert "--registry" not in publish["args"] and publish["user"] == "publisher"
    assert publish["password"] == "publisher-pw"


# The digest travels: Buildkite meta-data, GitHub job outputs.

def test_buildkite_hands_the_built_digest_to_gpu_and_publish(tmp_path: Path, publishing: Path) -> None:
    steps = bk_steps(publishing)
    agent = Agent(tmp_path)
    for arch, nic in CELLS:
        cell = f"--arch {arch} --nic {nic}"
        [build] = bk_find(steps, f"invoke build {cell}")
        [gpu] = bk_find(steps, f"invoke test --gpu {cell}")
        [publish] = bk_find(steps, f"{PUBLISH} {cell}")
        outcomes = []
        for step in (build, gpu, publish):
            proc = agent.run(step["command"])
            assert proc.returncode == 0, proc.stderr
            outcomes.append(agent.calls())
        assert (tmp_path / "metadata" / f"digest-{arch}-{nic}").read_text().strip() == BUILT
        check_handoff(*outcomes)


def github_output(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_github_hands_the_built_digest_to_gpu_and_publish(tmp_path: Path, publishing: Path) -> None:
    jobs = gh_jobs(publishing)
    agent = Agent(tmp_path)
    for arch, nic in CELLS:
        cell = f"--arch {arch} --nic {nic}"
        [(build_key, build)] = gh_find(jobs, f"invoke build {cell}").items()
        [gpu] = gh_find(jobs, f"invoke test --gpu {cell}").values()
        [publish] = gh_find(jobs, f"{PUBLISH} {cell}").values()
        [step] = [s for s in build["steps"] if "invoke build" in s.get("run", "")]
        assert build["outputs"] == {"digest": f"${{{{ steps.{step['id']}.outputs.digest }}}}"}
        output = tmp_path / f"output-{arch}-{nic}"
        proc = agent.run(step["run"], GITHUB_OUTPUT=str(output))
        assert proc.returncode == 0, proc.stderr
        calls_build = agent.calls()
        handed = github_output(output)["digest"]
        outcomes = [calls_build]
        for job in (gpu, publish):
            # The job's env maps the build job's output to EPBUILD_DIGEST (never pasted into the script).
            assert job["env"]["EPBUILD_DIGEST"] == f"${{{{ needs.{build_key}.outputs.digest }}}}"
            [run] = [s["run"] for s in job["steps"] if "invoke pull" in s.get("run", "")]
            proc = agent.run(run, EPBUILD_DIGEST=handed)
            assert proc.returncode == 0, proc.stderr
            outcomes.append(agent.calls())
        check_handoff(*outcomes)


@pytest.mark.parametrize("missing", ["EPBUILD_CI_REGISTRY", "EPBUILD_CI_CACHE", "EPBUILD_DIGEST",
                                     "EPBUILD_STAGING_READ_PASSWORD", "EPBUILD_PUBLISH_USER"])
def test_an_empty_variable_stops_the_step_before_any_command(tmp_path: Path, publishing: Path, missing: str) -> None:
    agent = Agent(tmp_path)
    steps = bk_steps(publishing)
    commands = [s["command"] for s in steps if missing.removeprefix("EPBUILD_") in s["command"]
                or missing in s["command"]]
    assert commands
    for arch, nic in CELLS:  # Buildkite's steps read the digest from the build's meta-data
        (tmp_path / "metadata" / f"digest-{arch}-{nic}").write_text("" if missing == "EPBUILD_DIGEST" else BUILT)
    for command in commands:
        proc = agent.run(command, **{missing: ""})
        assert proc.returncode != 0 and f"set {missing} to" in proc.stderr, command
        called = agent.calls()
        # Nothing ran with the variable missing: the step stopped at the first command that needs it.
        assert all(missing not in json.dumps(c) for c in called)
        assert not any(c["args"][0] in ("publish", "pull") and "" in c["args"] for c in called)


# Least privilege.

def secrets_of(job: dict[str, Any]) -> set[str]:
    return {m for value in job.get("env", {}).values() for m in re.findall(r"secrets\.(\w+)", value)}


def test_each_job_holds_only_its_own_credentials(publishing: Path) -> None:
    workflow = yaml.safe_load((publishing / GITHUB).read_text())
    assert "env" not in workflow and workflow["permissions"] == {}
    jobs = workflow["jobs"]
    kinds = {"check": set(), "stage": {"CACHE"}, "build": {"CACHE", "STAGING"}, "gpu": {"STAGING_READ"},
             "publish": {"STAGING_READ", "PUBLISH"}}
    seen = set()
    for key, job in jobs.items():
        kind = key.split("-")[0]
        seen.add(kind)
        expected = {f"EPBUILD_{login}_{part}" for login in kinds[kind] for part in ("USER", "PASSWORD")}
        if kind in ("stage", "build"):  # the compiling steps also get the trust's shared compile cache (#22)
            expected.add("EPBUILD_COMPILE_CACHE")
        assert secrets_of(job) == expected, key
        assert job["permissions"] == {"contents": "read"}, key
        if kind == "publish":
            assert job["environment"] == "epbuild-publish"
        elif kind != "check":
            # main's staging and cache for main; the branches' own for every other ref.
            assert job["environment"] == "${{ github.ref == 'refs/heads/main' && 'epbuild-main' || 'epbuild-branches' }}"
    assert seen == set(kinds)
    # Buildkite: the credentials come from the agent's hook; each step's command names only its kind's logins.
    for step in bk_steps(publishing):
        kind = step["key"].split("-")[0]
        named = set(re.findall(r"EPBUILD_(CACHE|STAGING|STAGING_READ|PUBLISH)_USER", step["command"]))
        assert named == kinds[kind], step["key"]


def test_forks_never_reach_self_hosted_runners(publishing: Path) -> None:
    same_repo = ("github.event_name != 'pull_request' || "
                 "github.event.pull_request.head.repo.full_name == github.repository")
    for key, job in gh_jobs(publishing).items():
        if job["runs-on"] == "ubuntu-latest":
            continue
        assert job["runs-on"][0] == "self-hosted"
        assert job["if"] in (same_repo, "github.ref == 'refs/heads/main' && github.event_name != 'pull_request'"), key


def test_actions_are_pinned_by_commit_and_keep_no_token(publishing: Path) -> None:
    for key, job in gh_jobs(publishing).items():
        uses = [s for s in job["steps"] if "uses" in s]
        assert uses, key
        for step in uses:
            assert re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        [checkout] = [s for s in uses if s["uses"].startswith("actions/checkout@")]
        assert checkout["with"]["persist-credentials"] is False
        # Self-hosted runners keep the ignored build/ cache between runs.
        assert checkout["with"].get("clean", True) is (job["runs-on"] == "ubuntu-latest")


# Robust runs.

def test_every_step_has_a_time_limit_a_retry_rule_and_uploads_its_logs(publishing: Path) -> None:
    text = (publishing / BUILDKITE).read_text()
    assert yaml.safe_load(text)["env"]["BUILDKITE_GIT_CLEAN_FLAGS"] == "-ffdq"  # no -x: build/ stays
    limits: dict[str, set[int]] = {}
    for step in bk_steps(publishing):
        kind = step["key"].split("-")[0]
        limits.setdefault(kind, set()).add(step["timeout_in_minutes"])
        assert step["artifact_paths"] == ["build/logs/**/*", "build/reports/**/*"]
        if kind == "publish":
            assert step["retry"] == {"automatic": False}
        else:  # a lost agent (exit -1) or a stopped one: again, twice at most; a failed command: never
            assert {"exit_status": -1, "limit": 2} in step["retry"]["automatic"]
            assert all("exit_status" not in rule or rule["exit_status"] == -1 for rule in step["retry"]["automatic"])
    assert all(len(v) == 1 for v in limits.values()) and min(limits["stage"]) > min(limits["publish"])
    for key, job in gh_jobs(publishing).items():
        assert job["timeout-minutes"] == min(limits[key.split("-")[0]]), key
        [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert upload["if"] == "always()" and upload["with"]["path"].split() == ["build/logs", "build/reports"]


def test_publishes_are_serial_per_cell_and_pull_requests_cancel_their_older_runs(publishing: Path) -> None:
    workflow = yaml.safe_load((publishing / GITHUB).read_text())
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "github.event.pull_request.number || github.run_id" in workflow["concurrency"]["group"]
    groups = [j["concurrency"]["group"] for j in workflow["jobs"].values() if "concurrency" in j]
    assert sorted(groups) == sorted(f"epbuild-publish-{a}-{n}" for a, n in CELLS)
    # Only the newest commit of main publishes (an older run finishing later would move a tag back).
    for job in gh_find(workflow["jobs"], PUBLISH).values():
        [newest] = [s for s in job["steps"] if s.get("id") == "newest"]
        assert newest["run"] == './ci/newest-on-main.sh >> "$GITHUB_OUTPUT"'
        [run] = [s for s in job["steps"] if PUBLISH in s.get("run", "")]
        assert run["if"] == "steps.newest.outputs.newest == 'true'"


def test_newest_on_main_says_whether_the_commit_is_mains_head(tmp_path: Path) -> None:
    def git(*args: str, cwd: Path) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

    origin = tmp_path / "origin"
    origin.mkdir()
    git("init", "-q", "-b", "main", cwd=origin)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one", cwd=origin)
    first = git("rev-parse", "HEAD", cwd=origin)
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    script = ROOT / "ci" / "newest-on-main.sh"

    def newest() -> str:
        proc = subprocess.run(["bash", str(script)], cwd=clone, env={**os.environ, "GITHUB_SHA": first},
                              capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    assert newest() == "newest=true"
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "two", cwd=origin)
    assert newest() == "newest=false"


def sysfs(tmp_path: Path, versions: list[int]) -> Path:
    nodes = tmp_path / "class" / "kfd" / "kfd" / "topology" / "nodes"
    for i, version in enumerate([0, *versions]):
        (nodes / str(i)).mkdir(parents=True)
        (nodes / str(i) / "properties").write_text(f"gfx_target_version {version}\n")
    return tmp_path


def test_a_pool_override_to_another_arch_fails_the_gpu_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendering = project.rendering("matrix.yaml")
    gfx950 = [rc for rc in rendering.cells if rc.cell.name == "gfx950-cx7"]
    monkeypatch.setenv(SYSFS_ENV, str(sysfs(tmp_path / "mi325", [90402, 90402])))
    with pytest.raises(EpbuildError, match="GPUs are gfx942, but the step is for gfx950"):
        require_archs(["gfx950"], gfx950)
    monkeypatch.setenv(SYSFS_ENV, str(sysfs(tmp_path / "mi355", [90500, 90500])))
    require_archs(["gfx950"], gfx950)
    with pytest.raises(EpbuildError, match="--gpu-arch gfx942: the selected cells carry device code for gfx950"):
        require_archs(["gfx942"], gfx950)
    # The GPU steps pass their pool's arch; the header's example moves a pool to one of the same arch.
    for step in bk_find(bk_steps(ROOT), "invoke test --gpu --arch gfx950"):
        assert re.findall(r"--gpu-arch (\S+)", step["command"]) == ["gfx950"]
    header = (ROOT / BUILDKITE).read_text().split("\nsteps:")[0]
    assert "EPBUILD_POOL_MI355_2=<another gfx950 pool>" in header


# One key everywhere.

def test_publishing_refuses_a_base_without_a_digest_pin(tmp_path: Path) -> None:
    project_dir = variant(tmp_path)  # the default matrix: publish off, nothing to refuse
    path = project_dir / "matrix.yaml"
    path.write_text(path.read_text().replace("  publish: false", "  publish: true"))
    for args in (["ci", "--check"], ["ci"]):
        proc = invoke(project_dir, *args)
        assert proc.returncode != 0
        assert "ci.publish is on, but bases.rocm72.digest is not set" in proc.stderr and "Traceback" not in proc.stderr
        assert str(path) in proc.stderr


def test_the_stage_identity_covers_the_base_digest(tmp_path: Path) -> None:
    # Evidence for issue #28's "stage identity includes the base digest": a pinned digest is in the base stage's
    # FROM line (render.base_reference), and every identity covers its ancestors' (stagegraph.stage_identities).
    one = variant(tmp_path / "one", *PUBLISHING)
    other_digest = "sha256:" + "e" * 64
    two = variant(tmp_path / "two", PUBLISHING[0], (PUBLISHING[1][0], PUBLISHING[1][1].replace(BASE_DIGEST, other_digest)))
    renderings = [project.rendering(str(p / "matrix.yaml")) for p in (one, two)]
    ids = [{rc.cell.name: stage_identities(rc) for rc in r.cells} for r in renderings]
    for cell, stages in ids[0].items():
        assert set(stages) == set(ids[1][cell])
        for stage, identity in stages.items():
            assert identity != ids[1][cell][stage], (cell, stage)
    [rc] = [rc for rc in renderings[0].cells if rc.cell.name == "gfx950-cx7"]
    assert rc.stages["base"].startswith(f"FROM docker.io/rocm/vllm-dev:base@{BASE_DIGEST} AS base\n")


def test_the_readme_counts_the_shared_stage_steps_the_pipelines_have() -> None:
    rendering = project.rendering("matrix.yaml")
    count = len(pipeline_graph(rendering.cells).stages)
    steps = [s for s in bk_steps(ROOT) if s["key"].startswith("stage-")]
    assert len(steps) == count
    readme = (ROOT / "README.md").read_text()
    [said] = re.findall(r"(\d+) shared-stage\s+steps", readme)
    assert int(said) == count
    assert f"# {count} shared-stage steps" in (ROOT / BUILDKITE).read_text()


@pytest.mark.parametrize("args", [["build", "--cache", "", "--cell", "gfx950-cx7", "--dry-run"],
                                  ["publish", "--registry", "", "--staging", "--cell", "gfx950-cx7"],
                                  ["publish", "--digest", "", "--cell", "gfx950-cx7"],
                                  ["pull", "--registry", "r.example/x", "--digest", "", "--cell", "gfx950-cx7"]])
def test_epbuild_itself_refuses_an_empty_registry_cache_or_digest(args: list[str]) -> None:
    """Behind the steps' own guards: an empty value never means "the default" (issue #28: `--cache "/epbuild-cache"`)."""
    proc = invoke(ROOT, *args)
    assert proc.returncode == 2 and "unset?" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
