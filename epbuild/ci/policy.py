"""What every generated pipeline holds to, whichever CI runs it: the agent pools its steps run on, the
credentials each kind of step holds, the actions it pins, its time limits and what it uploads (docs/ci.md)."""

from __future__ import annotations

from dataclasses import dataclass

from epbuild.model.cells import Cell
from epbuild.model.matrix import MatrixBase


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
COMPILE_CACHE_KINDS = ("stage", "build")
"""The steps that compile, and so get the trust's shared compile cache (EPBUILD_COMPILE_CACHE, a secret: its URL
may hold a password; unset, the steps build without it)."""
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
"""Uploaded whatever the step's outcome: the run logs (epbuild/build/run_dir.py) and the JUnit reports of
`invoke test`."""


@dataclass(frozen=True)
class Login:
    """One credential pair of the split, named by what it may do; it reaches `docker login`
    (epbuild/registry/credentials.py) as EPBUILD_REGISTRY_USER/_PASSWORD for one command only."""

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


def build_pool(matrix: MatrixBase) -> Pool:
    return Pool(matrix.ci.build_pool)
