"""Against a real registry that requires a login: publish logs in without leaving the password in any docker
config, its replay.sh logs in again from the environment; and a registry that refuses us, or a credential helper
that is missing, is an error that stops `pull --build`, never a cell "not published" that it quietly rebuilds."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Each pins stand-in commits through matrix_variant, which reads the stand-ins' commits.json.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

from epbuild.offline import matrix_variant

from harness import ROOT, InvokeResult, cells_json, invoke
from registry import Registry

CELL = "gfx942-thor2-sid"
USER, PASSWORD = "epbuild-ci", "Tr0ub4dor-3-horse-staple"
# An image name of these tests' own, so that no other checkout's build moves the local tag they publish.
IMAGE = "epbuild-registry-auth-test/stack"


@pytest.fixture(scope="module")
def locked_registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("locked-registry"), login=(USER, PASSWORD))
    try:
        yield reg
    finally:
        reg.stop()


def docker_config(folder: Path, config: dict[str, object]) -> dict[str, str]:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(folder)}


def files_holding(folder: Path, secret: str) -> list[Path]:
    """Files holding the secret as it is, or as `docker login` stores it (base64 of user:secret in `auths`)."""
    forms = [secret.encode(), base64.b64encode(f"{USER}:{secret}".encode())]
    return [p for p in folder.rglob("*") if p.is_file() and any(form in p.read_bytes() for form in forms)]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, offline_build: InvokeResult) -> str:
    path = str(matrix_variant(tmp_path_factory.mktemp("matrix"), image_name=IMAGE))
    invoke("render", "--matrix", path, check=True)
    invoke("build", "--matrix", path, "--cell", CELL, "--quiet", check=True)
    return path


@pytest.fixture(scope="module")
def published(locked_registry: Registry, matrix: str,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[InvokeResult, Path]:
    home = tmp_path_factory.mktemp("user") / "docker"
    env = {**docker_config(home, {}), "EPBUILD_REGISTRY_USER": USER, "EPBUILD_REGISTRY_PASSWORD": PASSWORD}
    result = invoke("publish", "--matrix", matrix, "--cell", CELL, "--registry", f"{locked_registry.address}/ci",
                    env=env, check=True)
    assert " pushed (" in result.out
    return result, home


def test_publish_leaves_no_credentials_in_the_docker_config(published: tuple[InvokeResult, Path],
                                                            locked_registry: Registry) -> None:
    result, home = published
    assert json.loads((home / "config.json").read_text()) == {}
    assert not files_holding(home, PASSWORD)
    import tempfile

    for throwaway in Path(tempfile.gettempdir()).glob("epbuild-docker-config-*"):
        assert not files_holding(throwaway, PASSWORD), throwaway
    assert not files_holding(result.run_dir, PASSWORD)


def test_the_replayed_login_reads_the_password_from_the_environment(published: tuple[InvokeResult, Path],
                                                                     tmp_path: Path) -> None:
    replay = published[0].run_dir / "replay.sh"
    assert "--password-stdin" in replay.read_text()
    env = {**os.environ, **docker_config(tmp_path / "docker", {}), "EPBUILD_REGISTRY_USER": USER}
    without = subprocess.run(["bash", str(replay)], env=env, capture_output=True, text=True)
    assert without.returncode != 0
    replayed = subprocess.run(["bash", str(replay)], env={**env, "EPBUILD_REGISTRY_PASSWORD": PASSWORD},
                              capture_output=True, text=True)
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    assert "Login Succeeded" in replayed.stdout + replayed.stderr
    assert not files_holding(tmp_path, PASSWORD)


def test_moving_tags_are_copied_in_the_locked_registry_with_the_immutable_digest(
        locked_registry: Registry, published: tuple[InvokeResult, Path], matrix: str, tmp_path: Path) -> None:
    cell = cells_json(matrix)[CELL]
    path = f"ci/{cell['image'].split(':')[0]}"
    immutable_tag = f"{CELL}-{cell['content_key'][:12]}"
    # The same image under another manifest (another machine's push): the moving tag must get that digest.
    held = locked_registry.restate(path, immutable_tag, f"restated/{path.split('/', 1)[1]}", immutable_tag)
    env = {**docker_config(tmp_path / "docker", {}), "EPBUILD_REGISTRY_USER": USER,
           "EPBUILD_REGISTRY_PASSWORD": PASSWORD}
    result = invoke("publish", "--matrix", matrix, "--cell", CELL, "--registry",
                    f"{locked_registry.address}/restated", env=env)
    assert result.code == 0, result.out + result.err
    assert "nothing pushed" in result.out and "moved" in result.out
    body, _ = locked_registry.manifest(f"restated/{path.split('/', 1)[1]}", CELL)
    assert "sha256:" + hashlib.sha256(body).hexdigest() == held
    assert not files_holding(result.run_dir, PASSWORD)


def pull_build(registry: Registry, matrix: str, env: dict[str, str]) -> InvokeResult:
    return invoke("pull", "--matrix", matrix, "--cell", CELL, "--registry", f"{registry.address}/ci", "--build",
                  env=env)


def test_a_registry_that_refuses_us_is_not_an_absent_image(locked_registry: Registry, matrix: str,
                                                             published: tuple[InvokeResult, Path],
                                                             tmp_path: Path) -> None:
    result = pull_build(locked_registry, matrix, docker_config(tmp_path / "docker", {}))
    assert result.code == 2, result.out + result.err
    assert "the registry refused access" in result.err and "building it instead" not in result.out


def test_a_missing_credential_helper_is_not_an_absent_image(locked_registry: Registry, matrix: str,
                                                            published: tuple[InvokeResult, Path],
                                                            tmp_path: Path) -> None:
    helpers = {"credHelpers": {locked_registry.address: "epbuild-no-such-helper"}}
    result = pull_build(locked_registry, matrix, docker_config(tmp_path / "docker", helpers))
    assert result.code == 2, result.out + result.err
    assert "docker could not get credentials" in result.err and "epbuild-no-such-helper" in result.err
    assert "building it instead" not in result.out


def test_with_the_login_an_unpublished_key_still_reads_as_absent(locked_registry: Registry, matrix: str,
                                                                 published: tuple[InvokeResult, Path],
                                                                 tmp_path: Path) -> None:
    env = {**docker_config(tmp_path / "docker", {}), "EPBUILD_REGISTRY_USER": USER,
           "EPBUILD_REGISTRY_PASSWORD": PASSWORD}
    result = invoke("pull", "--matrix", matrix, "--cell", "gfx950-cx7-sid", "--registry",
                    f"{locked_registry.address}/ci", env=env)
    assert result.code == 2, result.out + result.err
    assert "the registry has no image for this checkout's content key" in result.err
    assert "this cell was never published there" in result.err
    key = cells_json(matrix)["gfx950-cx7-sid"]["content_key"]
    assert key[:12] in result.err


HELD_LOGIN = """
import os, sys, time
from epbuild.util.commands import Runner
from epbuild.registry.credentials import registry_login
with registry_login(sys.argv[1], Runner()):
    print(os.environ["DOCKER_CONFIG"], flush=True)
    time.sleep(600)
"""


def test_a_killed_command_leaves_no_credentials_and_the_next_login_removes_its_folder(
        locked_registry: Registry, published: tuple[InvokeResult, Path], matrix: str, tmp_path: Path) -> None:
    env = {**os.environ, **docker_config(tmp_path / "docker", {}), "EPBUILD_REGISTRY_USER": USER,
           "EPBUILD_REGISTRY_PASSWORD": PASSWORD}
    holder = subprocess.Popen([sys.executable, "-c", HELD_LOGIN, locked_registry.address], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        folder = Path(holder.stdout.readline().strip())
        # Logged in: docker reads the locked registry with that folder's config (and the holder's variables).
        image = f"{locked_registry.address}/ci/{cells_json(matrix)[CELL]['image']}"
        inspected = subprocess.run(["docker", "buildx", "imagetools", "inspect", image], capture_output=True,
                                   text=True, env={**env, "DOCKER_CONFIG": str(folder),
                                                   "PATH": f"{folder / 'bin'}:{env['PATH']}"})
        assert inspected.returncode == 0, inspected.stderr
    finally:
        holder.kill()  # SIGKILL: no clean-up runs
        holder.wait()
    assert folder.is_dir()
    assert not files_holding(folder, PASSWORD), "a killed command left the password on disk"
    again = subprocess.run([sys.executable, "-c", HELD_LOGIN.replace("time.sleep(600)", "pass"),
                            locked_registry.address], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert not folder.exists(), "the next login kept the killed command's folder"
