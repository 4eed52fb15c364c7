"""The generated GitHub workflow, as committed and with publishing on, passes actionlint (which also runs shellcheck
on every `run:` script) and zizmor; the CI shell scripts pass shellcheck. The linters come from ci/requirements.lock
(ci/setup.sh); a missing one fails, naming it.

zizmor's only findings, and only under its `auditor` persona, are `self-hosted-runner`: the build, GPU and
publish jobs need self-hosted runners (hosted ones have neither the GPUs nor the disk and hours to build ROCm's
vLLM). That is explained, not waived: each such job runs only for pushes, dispatches and same-repository pull
requests (never a fork's code), and docs/ci.md says what the runners' operator must keep apart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_pipelines import GITHUB, PUBLISHING, ROOT, variant

SAME_REPOSITORY = ("github.event_name != 'pull_request' || "
                   "github.event.pull_request.head.repo.full_name == github.repository")
ON_MAIN = "github.ref == 'refs/heads/main' && github.event_name != 'pull_request'"


def tool(name: str) -> str:
    """The linter beside this Python (ci/setup.sh's venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: ci/setup.sh installs it from ci/requirements.lock"
    return found


@pytest.fixture(scope="module", params=["committed", "publishing"])
def workflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == "committed":
        return ROOT / GITHUB
    return variant(tmp_path_factory.mktemp("publishing"), *PUBLISHING) / GITHUB


def test_actionlint_and_shellcheck_find_nothing(workflow: Path) -> None:
    # actionlint runs shellcheck on `run:` scripts when shellcheck is on its PATH.
    env = {"PATH": f"{Path(tool('shellcheck')).parent}:/usr/bin:/bin"}
    proc = subprocess.run([tool("actionlint"), "-no-color", str(workflow)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really reads the file: a job output nobody defines is reported."""
    broken = tmp_path / "broken.yml"
    text = (ROOT / GITHUB).read_text()
    assert "needs.build-gfx950-cx7.outputs.digest }}" in text
    broken.write_text(text.replace("needs.build-gfx950-cx7.outputs.digest }}", "needs.build-gfx950-cx7.outputs.digets }}", 1))
    proc = subprocess.run([tool("actionlint"), "-no-color", str(broken)], capture_output=True, text=True)
    assert proc.returncode == 1 and 'property "digets" is not defined' in proc.stdout


def zizmor(workflow: Path, *args: str) -> list[dict[str, object]]:
    # --offline: no GitHub here (the online audits check the pinned commits against GitHub's API).
    proc = subprocess.run([tool("zizmor"), "--offline", "--format", "json", "--no-exit-codes", *args, str(workflow)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    findings: list[dict[str, object]] = json.loads(proc.stdout)
    return findings


def test_zizmor_finds_nothing_but_the_explained_self_hosted_runners(workflow: Path) -> None:
    assert zizmor(workflow) == []
    audited = zizmor(workflow, "--persona", "auditor")
    assert {f["ident"] for f in audited} == {"self-hosted-runner"}
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    self_hosted = {k for k, j in jobs.items() if j["runs-on"] != "ubuntu-latest"}
    assert len(audited) == len(self_hosted)
    for key in self_hosted:
        assert jobs[key]["if"] in (SAME_REPOSITORY, ON_MAIN), key


def test_zizmor_catches_a_pasted_variable(tmp_path: Path) -> None:
    """What issue #28 found: a variable pasted into a script (template injection) and a tag-pinned action."""
    bad = tmp_path / "bad.yml"
    text = (ROOT / GITHUB).read_text()
    text = text.replace('--cache "${EPBUILD_CI_CACHE:?set EPBUILD_CI_CACHE to the stage cache repository}"',
                        '--cache "${{ github.event.pull_request.title }}"', 1)
    bad.write_text(text.replace("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "actions/checkout@v4"))
    found = {f["ident"] for f in zizmor(bad)}
    assert {"template-injection", "unpinned-uses"} <= found


def test_shellcheck_finds_nothing_in_the_ci_scripts() -> None:
    scripts = [ROOT / "ci" / name for name in ("setup.sh", "setup-docker.sh", "newest-on-main.sh")]
    scripts.append(ROOT / "ci" / "buildkite" / "pre-command")
    proc = subprocess.run([tool("shellcheck"), "--shell=bash", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
