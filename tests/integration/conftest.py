"""Fixtures for tests against the real Docker engine and BuildKit. A missing engine FAILS these tests: CI must
have one (.ci/run installs it), and a skipped build test would hide exactly that."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from epbuild.build import engine_upkeep
from epbuild.offline import REPOS_DIR, ensure_fixture_repos
from epbuild.offline.settings import FIXTURES_DIR
from epbuild.util.commands import Runner

from harness import OFFLINE, ROOT, InvokeResult, invoke


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    proc = subprocess.run(["docker", "info"], capture_output=True, text=True)
    assert proc.returncode == 0, f"no working Docker engine (run ci/setup-docker.sh): {proc.stderr[-500:]}"
    proc = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True)
    assert proc.returncode == 0, "docker buildx is missing (run ci/setup-docker.sh)"
    yield
    # The builds of this session added build cache records, and one cold run's alone take dockerd close to the 10 s
    # it gives its builder to start (epbuild/build/engine_upkeep.py): the engine is left able to start again.
    print(f"\n{engine_upkeep.trim(Runner()).summary()}")


@pytest.fixture(scope="session")
def offline_build(docker_engine: None) -> InvokeResult:
    """One cold-or-warm build of two cells of the offline example, in one invocation."""
    return invoke("build", "--matrix", OFFLINE, "--cell", "gfx950-cx7-sid", "--cell", "gfx942-thor2-sid", "--quiet",
                  check=True)

@pytest.fixture(scope="session")
def stand_in_repos() -> None:
    """The offline example's stand-in repositories and their commits.json, made by the same step `invoke build`'s
    prepare runs (idempotent), so a test that pins a stand-in commit through `matrix_variant` before its first
    build passes alone and in any order."""
    ensure_fixture_repos(REPOS_DIR, fixtures_dir=FIXTURES_DIR)


@pytest.fixture(scope="session")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Path:
    """A fresh clone of this checkout's committed state, as a new user has it: no build/ (nothing exported,
    prepared or cached). Run its own tasks with harness.invoke_in."""
    dest = tmp_path_factory.mktemp("fresh") / "epbuild"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    assert not (dest / "build").exists()
    return dest


# The toy component's in-image check runs inside an image through `invoke test`, never in this session.
collect_ignore = ["toy_component"]
