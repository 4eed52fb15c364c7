"""Generates the CI pipelines from the matrix: Buildkite's ci/pipeline.yml and GitHub's .github/workflows/epbuild.yml.

Both have one shape: a drift and unit-test check; each stage that cells share, built once into the stage cache
as a step of its own (epbuild/ci/pipeline_graph.py); per cell a build that imports those stages and builds only its
own, with static image checks, and pushes to staging, handing on the digest it pushed; a GPU test of exactly that
digest on each of its archs' agent pools; and, with ci.publish, a publish of exactly that digest on main once
every check passed. Each kind of step holds only its own credentials, and the registries of its build's trust
(docs/ci.md). Rendering is pure (texts by path); `invoke ci` writes them or, with --check, fails on drift like
`invoke render --check`. Every matrix value written into a command is shell-quoted; registries, credentials
and digests are the agent's variables, expanded by its shell and refused when empty.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from epbuild.ci.pipeline_graph import StageStep, pipeline_graph
from epbuild.inputs.resolve import pinned_digest
from epbuild.model.cells import Cell
from epbuild.model.matrix import MatrixBase
from epbuild.render.dockerfiles import Rendering
from epbuild.util import atomicfs
from epbuild.util.errors import EpbuildError

BUILDKITE = Path("ci/pipeline.yml")
GITHUB = Path(".github/workflows/epbuild.yml")
DEFAULT_MATRIX = "matrix.yaml"
UNIT_TESTS = 'python3 -m pytest -q -m "not gpu and not docker"'


@dataclass(frozen=True)
class Pool:
    """A matrix pool that steps run on, and the variable that moves them for one run."""

    pool: str

    @property
    def env(self) -> str:
        return "EPBUILD_POOL_" + self.pool.upper().replace("-", "_")

    @property
    def buildkite(self) -> str:
        return f"${{{self.env}:-{self.pool}}}"

    @property
    def github(self) -> str:
        return f"${{{{ inputs.{self.env} || vars.{self.env} || '{self.pool}' }}}}"


@dataclass(frozen=True)
class GpuRun(Pool):
    """Where one GPU test of a cell runs."""

    gpus: int
    """GPUs per agent of the pool (archs.<arch>.gpu_count)."""
    archs: tuple[str, ...]
    """The cell's archs whose agent_pool this is: the agent must carry them, whatever pool an override names."""


def gpu_runs(cell: Cell, matrix: MatrixBase) -> list[GpuRun]:
    """One run per distinct pool of the cell's archs: a fat cell is tested on each arch's hardware."""
    archs: dict[str, list[str]] = {}
    for arch in cell.archs:
        archs.setdefault(matrix.archs[arch].agent_pool, []).append(arch)
    return [GpuRun(pool, matrix.archs[found[0]].gpu_count, tuple(found)) for pool, found in archs.items()]


CI_REGISTRY_ENV = "EPBUILD_CI_REGISTRY"
"""The staging namespace of this build's trust: main's for builds of main, another for branches and pull requests
(set per trust by the Buildkite agent hook, or by the GitHub environment of the job)."""
CI_CACHE_ENV = "EPBUILD_CI_CACHE"
"""The stage cache repository of this build's trust: main imports and writes only main's."""
DIGEST_ENV = "EPBUILD_DIGEST"
"""The digest the build step pushed to staging: what the GPU tests check and the publish step publishes."""
PUBLISH_QUEUE = "epbuild-publish"
"""The Buildkite queue of the publish steps: its agents alone hold the publish credentials, and their hook
(ci/buildkite/pre-command) runs only builds of main's commits."""
PUBLISH_ENVIRONMENT = "epbuild-publish"
"""The GitHub environment of the publish jobs: it holds the publish credentials and admits only main."""
TRUST_ENVIRONMENT = "${{ github.ref == 'refs/heads/main' && 'epbuild-main' || 'epbuild-branches' }}"
"""The GitHub environment of the other self-hosted jobs: main's staging and cache for main (an environment whose
deployment branches are main only), the branches' own for everything else."""
SAME_REPOSITORY = ("github.event_name != 'pull_request' || "
                   "github.event.pull_request.head.repo.full_name == github.repository")
"""Jobs on self-hosted runners never run a fork's code (a fork's pull request gets the hosted check only)."""
ON_MAIN = "github.ref == 'refs/heads/main' && github.event_name != 'pull_request'"

CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"  # v4.2.2
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"  # v5.6.0
UPLOAD_ARTIFACT = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"  # v4.6.2
"""Actions by commit: a tag can be moved to other code. The versions are in the comments beside them."""
SETUP = "./ci/setup.sh && . build/ci-venv/bin/activate"
"""Every step's start: the agent's tools and CI's Python packages, in their virtual environment (ci/setup.sh)."""


TIMEOUT_MINUTES = {"check": 60, "stage": 480, "build": 480, "gpu": 180, "publish": 60}
"""Per kind of step: a stage or cell step may compile vLLM from nothing; a publish moves one image."""
ARTIFACTS = ["build/logs/**/*", "build/reports/**/*"]
"""Uploaded whatever the step's outcome: the run logs (epbuild/build/run_dir.py) and the JUnit reports of `invoke test`."""


@dataclass(frozen=True)
class Login:
    """One credential pair of the split, named by what it may do; it reaches `docker login` (epbuild/registry/credentials.py)
    as EPBUILD_REGISTRY_USER/_PASSWORD for one command only."""

    name: str
    may: str

    @property
    def user(self) -> str:
        return f"EPBUILD_{self.name}_USER"

    @property
    def password(self) -> str:
        return f"EPBUILD_{self.name}_PASSWORD"


CACHE = Login("CACHE", "push to the stage cache")
STAGING = Login("STAGING", "push to the staging namespace")
STAGING_READ = Login("STAGING_READ", "pull from the staging namespace")
PUBLISH = Login("PUBLISH", "push to the image.registry of the matrix")
LOGINS = {"stage": [CACHE], "build": [CACHE, STAGING], "gpu": [STAGING_READ], "publish": [STAGING_READ, PUBLISH]}
"""The credentials each kind of step holds: GPU steps read only; publish credentials only in publish steps."""


def digest_file(cell: Cell) -> str:
    return f"build/ci/{cell.name}.digest"


def _header(matrix_label: str, build: Pool, runs: list[GpuRun], how: list[str], shared_stages: int) -> str:
    moved = runs[-1]
    lines = [
        f"generated by epbuild from {matrix_label}, do not edit: change the matrix and run `invoke ci`",
        "(the check step fails on drift: `invoke ci --check`). Trust boundaries: docs/ci.md.",
        "GPU tests run on each arch's agent_pool (archs.<arch>.agent_pool in the matrix). When a pool has no",
        "agents, move its tests for one run to another pool of the same arch with its override variable, e.g.",
        f"{moved.env}=<another {'+'.join(moved.archs)} pool> (the test fails on an agent without that arch):",
        *how,
        "To move them for good, edit agent_pool in the matrix and run `invoke ci`.",
        f"Builds run on the build pool {build.pool} (ci.build_pool in the matrix; override variable {build.env}).",
        "Pools and their override variables: " + ", ".join(f"{r.pool} ({r.env})" for r in [build, *runs]) + ".",
        f"The build step pushes each checked image to the staging namespace {CI_REGISTRY_ENV} of its trust (main's,",
        "or the branches' own) and hands its digest on; GPU tests and publish pull exactly that digest.",
        f"{shared_stages} shared-stage steps build each stage that cells share once, into the stage cache",
        f"{CI_CACHE_ENV} of the build's trust (one ref per stage identity); cell steps import it, build only their own.",
    ]
    return "".join(f"# {line}\n" for line in lines)


def _dump(header: str, doc: dict[str, Any]) -> str:
    # PyYAML's emitter, the committed pipelines' format: ruamel.yaml (epbuild's one YAML reader) would fold long
    # commands elsewhere with a space before each break and leave GitHub's `on` unquoted.
    return header + str(yaml.safe_dump(doc, sort_keys=False, width=120))


class _Commands:
    """The command lines of the steps. Registries, credentials and the digest are the agent's environment
    variables, expanded by its shell inside double quotes (`dollar` is how a pipeline writes a shell `$`), which
    stop the step when unset or empty; everything else is quoted as a literal."""

    def __init__(self, matrix_label: str, dollar: str) -> None:
        self.dollar = dollar
        self.matrix = "" if matrix_label == DEFAULT_MATRIX else f" --matrix {shlex.quote(matrix_label)}"
        self.staging = f"--registry {self.var(CI_REGISTRY_ENV, 'the staging namespace')}"
        self.cache = f"--cache {self.var(CI_CACHE_ENV, 'the stage cache repository')}"
        self.digest = self.var(DIGEST_ENV, "the digest the build step pushed")

    def var(self, name: str, what: str) -> str:
        return f'"{self.dollar}{{{name}:?set {name} to {what}}}"'

    def login(self, login: Login, command: str) -> str:
        return (f"EPBUILD_REGISTRY_USER={self.var(login.user, 'the account that may ' + login.may)} "
                f"EPBUILD_REGISTRY_PASSWORD={self.var(login.password, 'its password')} {command}")

    def __call__(self, task: str, *args: str) -> str:
        return " ".join(["invoke", task, *args]) + self.matrix

    def check(self) -> str:
        checks = [self("render", "--check"), self("ci", "--check")]
        if not self.matrix:  # the offline example's images are committed too, and drift like any others
            checks.insert(1, "invoke render --check --matrix examples/offline/matrix.yaml")
        return " && ".join([*checks, UNIT_TESTS])

    @staticmethod
    def select(cell: Cell) -> tuple[str, ...]:
        chosen = ("--arch", cell.arch, "--nic", cell.nic) + (("--base", cell.base) if cell.base_in_name else ())
        return tuple(shlex.quote(word) for word in chosen)

    def cell(self, task: str, cell: Cell, *flags: str) -> str:
        return self(task, *flags, *self.select(cell))

    def stage(self, step: StageStep) -> str:
        return self.login(CACHE, self("build", self.cache, "--stage", shlex.quote(step.stage.name), "--cell",
                                      shlex.quote(step.cell.cell.name)))

    def build(self, cell: Cell) -> str:
        # --cache-export own: the shared stages are imported; their stage steps are their refs' only writers.
        build = self.login(CACHE, f"{self.cell('build', cell)} {self.cache} --cache-export own")
        # --staging pushes this build's image even when staging holds the tag: the digest handed on is this build's.
        stage = self.login(STAGING, self.cell("publish", cell, self.staging, "--staging", "--digest-file",
                                              shlex.quote(digest_file(cell))))
        return f"{build} && {self.cell('test', cell)} && {stage}"

    def pull(self, cell: Cell) -> str:
        return self.login(STAGING_READ, self.cell("pull", cell, self.staging, "--digest", self.digest))

    def gpu(self, cell: Cell, run: GpuRun) -> str:
        # The GPU tier runs vLLM's examples/ from the pinned source, which the wheel does not ship.
        archs = [word for arch in run.archs for word in ("--gpu-arch", shlex.quote(arch))]
        gpu_test = self("test", "--gpu", *self.select(cell), "--require-gpu", *archs, "--image", self.digest)
        return f"{self.pull(cell)} && {self.cell('sources', cell)} && {gpu_test}"

    def publish(self, cell: Cell) -> str:
        return f"{self.pull(cell)} && {self.login(PUBLISH, self.cell('publish', cell, '--digest', self.digest))}"


def build_pool(matrix: MatrixBase) -> Pool:
    return Pool(matrix.ci.build_pool)


def publishes(rendering: Rendering) -> bool:
    """Whether the pipelines publish: ci.publish, refused with a base that has no digest pin, since every step
    would then work the content key out from whatever base its own engine or registry holds."""
    m = rendering.matrix.model
    if not m.ci.publish:
        return False
    unpinned = sorted({rc.cell.base for rc in rendering.cells if pinned_digest(m.bases[rc.cell.base]) is None})
    if unpinned:
        raise EpbuildError(
            f"{rendering.matrix.path}: ci.publish is on, but bases.{unpinned[0]}.digest is not set"
            + (f" (nor for {', '.join(unpinned[1:])})" if unpinned[1:] else "")
            + ": a published cell's key must be the same in every step, so pin each base's digest (sha256:..., "
            "from `docker buildx imagetools inspect IMAGE`), or set ci.publish: false")
    return True


BUILDKITE_LOST_AGENT = {"automatic": [{"exit_status": -1, "limit": 2}, {"signal_reason": "agent_stop", "limit": 2}]}
"""A step whose agent was lost or stopped runs again; one that failed does not."""


def buildkite(rendering: Rendering, matrix_label: str) -> str:
    # $$ defers a variable to the agent's shell (`pipeline upload` would interpolate it).
    run = _Commands(matrix_label, "$$")
    m = rendering.matrix.model
    graph = pipeline_graph(rendering.cells)
    builder = build_pool(m)
    publish = publishes(rendering)

    def step(kind: str, label: str, key: str, command: str, agents: dict[str, str], **extra: Any) -> dict[str, Any]:
        # Fresh dicts per step: shared ones would be dumped as YAML anchors.
        retry = {"automatic": False} if kind == "publish" else {
            "automatic": [dict(rule) for rule in BUILDKITE_LOST_AGENT["automatic"]]}
        return {"label": label, "key": key, **extra, "agents": agents, "timeout_in_minutes": TIMEOUT_MINUTES[kind],
                "retry": retry, "artifact_paths": list(ARTIFACTS), "command": f"{SETUP} && {command}"}

    def on_builders() -> dict[str, str]:
        return {"queue": builder.buildkite}

    steps = [step("check", ":mag: drift and unit tests", "check", run.check(), on_builders())]
    for stage in graph.stages:
        steps.append(step("stage", f":card_file_box: stage {stage.label}", stage.key, run.stage(stage),
                          on_builders(), depends_on=["check", *stage.needs]))
    all_runs: dict[str, GpuRun] = {}
    for rc in rendering.cells:
        cell = rc.cell
        build = f"build-{cell.name}"
        handoff = f"buildkite-agent meta-data set {shlex.quote('digest-' + cell.name)} < {digest_file(cell)}"
        steps.append(step("build", f":docker: build {cell.name}", build, f"{run.build(cell)} && {handoff}",
                          on_builders(), depends_on=["check", *graph.cell_needs[cell.name]]))
        fetch = f"{DIGEST_ENV}=\"$$(buildkite-agent meta-data get {shlex.quote('digest-' + cell.name)})\""
        gpu_keys = []
        for gr in gpu_runs(cell, m):
            all_runs[gr.pool] = gr
            gpu_keys.append(f"gpu-{cell.name}-{gr.pool}")
            steps.append(step("gpu", f":rocket: GPU {cell.name} on {gr.buildkite}", gpu_keys[-1],
                              f"{fetch} && {run.gpu(cell, gr)}", {"pool": gr.buildkite}, depends_on=build,
                              env={"EPBUILD_NUM_GPUS": str(gr.gpus)}))
        if publish:
            # Ordered: publishes of one cell run one at a time, in the order their builds were made.
            steps.append(step("publish", f":package: publish {cell.name}", f"publish-{cell.name}",
                              f"{fetch} && {run.publish(cell)}", {"queue": PUBLISH_QUEUE}, branches="main",
                              depends_on=["check", build, *gpu_keys],
                              concurrency_group=f"epbuild/publish/{cell.name}", concurrency=1,
                              concurrency_method="ordered"))
    # No dollar sign in this comment: pipeline upload interpolates variables.
    how = ["  set it in the build's environment (New Build > Environment Variables); `buildkite-agent pipeline upload`",
           "  reads it there and falls back to the matrix's pool."]
    # The checkout keeps what git ignores (build/: sources, wheelhouses, layouts, the CI venv) from run to run.
    doc = {"env": {"BUILDKITE_GIT_CLEAN_FLAGS": "-ffdq"}, "steps": steps}
    return _dump(_header(matrix_label, builder, list(all_runs.values()), how, len(graph.stages)), doc)


def github(rendering: Rendering, matrix_label: str) -> str:
    run = _Commands(matrix_label, "$")
    m = rendering.matrix.model
    graph = pipeline_graph(rendering.cells)
    builder = build_pool(m)
    publish = publishes(rendering)

    def secrets(kind: str) -> dict[str, str]:
        return {name: f"${{{{ secrets.{name} }}}}" for login in LOGINS[kind] for name in (login.user, login.password)}

    def job(kind: str, name: str, runs_on: Any, command: str, *, env: dict[str, str] | None = None,
            run_id: str | None = None, **extra: Any) -> dict[str, Any]:
        hosted = runs_on == "ubuntu-latest"
        # Fresh step dicts per job: shared ones would be dumped as YAML anchors. No token stays in .git/config;
        # self-hosted runners keep the ignored build/ (sources, wheelhouses, layouts, the CI venv) between runs.
        checkout: dict[str, Any] = {"persist-credentials": False, **({} if hosted else {"clean": False})}
        steps: list[dict[str, Any]] = [
            {"uses": CHECKOUT, "with": checkout},
            {"uses": SETUP_PYTHON, "with": {"python-version": "3.11"}},
            {**({"id": run_id} if run_id else {}), "run": f"{SETUP} && {command}"},
            {"if": "always()", "uses": UPLOAD_ARTIFACT,
             "with": {"name": "${{ github.job }}-logs", "path": "build/logs\nbuild/reports",
                      "if-no-files-found": "ignore"}},
        ]
        if extra.get("environment") == PUBLISH_ENVIRONMENT:
            # Only the newest commit of main publishes: an older run that finishes later never moves a tag back.
            steps.insert(2, {"id": "newest", "run": "./ci/newest-on-main.sh >> \"$GITHUB_OUTPUT\""})
            steps[3]["if"] = "steps.newest.outputs.newest == 'true'"
        out = {"name": name, "runs-on": runs_on, **extra, "permissions": {"contents": "read"},
               "timeout-minutes": TIMEOUT_MINUTES[kind]}
        if env:
            out["env"] = env
        return {**out, "steps": steps}

    def on_builders() -> list[str]:
        # Hosted runners have neither the disk nor the hours to build ROCm's vLLM: build jobs need the matrix's
        # self-hosted build pool.
        return ["self-hosted", builder.github]

    def trusted(kind: str, **env: str) -> dict[str, Any]:
        return {"if": SAME_REPOSITORY, "environment": TRUST_ENVIRONMENT, "env": {**env, **secrets(kind)}}

    cache = f"${{{{ vars.{CI_CACHE_ENV} }}}}"
    staging = f"${{{{ vars.{CI_REGISTRY_ENV} }}}}"
    # The check only renders and runs the unit tests: a hosted runner does, for forks too.
    jobs: dict[str, Any] = {"check": job("check", "drift and unit tests", "ubuntu-latest", run.check())}
    for stage in graph.stages:
        jobs[stage.key] = job("stage", f"stage {stage.label}", on_builders(), run.stage(stage),
                              needs=["check", *stage.needs], **trusted("stage", **{CI_CACHE_ENV: cache}))
    all_runs: dict[str, GpuRun] = {}
    for rc in rendering.cells:
        cell = rc.cell
        build = f"build-{cell.name}"
        handoff = f'echo "digest=$(cat {digest_file(cell)})" >> "$GITHUB_OUTPUT"'
        jobs[build] = job("build", f"build {cell.name}", on_builders(), f"{run.build(cell)} && {handoff}",
                          run_id="build", needs=["check", *graph.cell_needs[cell.name]],
                          outputs={"digest": "${{ steps.build.outputs.digest }}"},
                          **trusted("build", **{CI_CACHE_ENV: cache, CI_REGISTRY_ENV: staging}))
        digest = f"${{{{ needs.{build}.outputs.digest }}}}"
        gpu_jobs = []
        for gr in gpu_runs(cell, m):
            all_runs[gr.pool] = gr
            gpu_jobs.append(f"gpu-{cell.name}-{gr.pool}")
            jobs[gpu_jobs[-1]] = job("gpu", f"GPU {cell.name} on {gr.github}", ["self-hosted", gr.github],
                                     run.gpu(cell, gr), needs=build,
                                     **trusted("gpu", **{CI_REGISTRY_ENV: staging, DIGEST_ENV: digest,
                                                         "EPBUILD_NUM_GPUS": str(gr.gpus)}))
        if publish:
            jobs[f"publish-{cell.name}"] = job(
                "publish", f"publish {cell.name}", on_builders(), run.publish(cell),
                needs=["check", build, *gpu_jobs], environment=PUBLISH_ENVIRONMENT,
                concurrency={"group": f"epbuild-publish-{cell.name}", "cancel-in-progress": False},
                env={CI_REGISTRY_ENV: staging, DIGEST_ENV: digest, **secrets("publish")}, **{"if": ON_MAIN})
    runs = list(all_runs.values())
    inputs = {r.env: {"description": f"Agent pool for the tests of pool {r.pool} (default: {r.pool})",
                      "type": "string", "required": False} for r in runs}
    inputs[builder.env] = {"description": f"Runner label of the build jobs (default: {builder.pool})",
                           "type": "string", "required": False}
    how = ["  run the workflow by hand (workflow_dispatch) with the input of that name, or, until the pool is back,",
           "  set a repository variable of that name (Settings > Secrets and variables > Actions > Variables)."]
    # A pull request's new push cancels its run in progress; every other run has a group of its own.
    concurrency = {"group": "epbuild-${{ github.event_name == 'pull_request' && github.event.pull_request.number "
                            "|| github.run_id }}",
                   "cancel-in-progress": "${{ github.event_name == 'pull_request' }}"}
    doc = {"name": "epbuild", "on": {"push": {"branches": ["main"]}, "pull_request": {},
                                     "workflow_dispatch": {"inputs": inputs}},
           "permissions": {}, "concurrency": concurrency, "jobs": jobs}
    return _dump(_header(matrix_label, builder, runs, how, len(graph.stages)), doc)


def render(rendering: Rendering, root: Path) -> dict[Path, str]:
    """Both pipelines by path, beside the matrix (as images/ is); commands name the matrix relative to `root`."""
    label = Path(os.path.relpath(rendering.matrix.path.resolve(), root.resolve())).as_posix()
    base = rendering.matrix.directory
    return {base / BUILDKITE: buildkite(rendering, label), base / GITHUB: github(rendering, label)}


def write(files: dict[Path, str]) -> list[Path]:
    """Each pipeline replaced in one rename, so an agent reading it meanwhile never gets half a file."""
    for path, text in files.items():
        atomicfs.write_text(path, text)
    return sorted(files)


def drift(files: dict[Path, str]) -> list[str]:
    """The generated files that are missing or differ from the rendering."""
    problems = []
    for path, text in sorted(files.items()):
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the rendering")
    return problems
