"""Issue 14, item 4: a command that fails for a real reason (a wrong registry password, a read-only registry, a
registry serving broken layers, no docker CLI) ends in ONE line naming the command and docker's own reason, and
exit code 2, never a traceback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

from epbuild.render.manifest import KEY_LABEL

from harness import OFFLINE, InvokeResult, cells_json, invoke
from registry import Registry, put_image

CELL = "gfx950-cx7-sid"


@pytest.fixture
def make_registry(tmp_path: Path, docker_engine: None) -> Iterator:  # type: ignore[type-arg]
    started: list[Registry] = []

    def make(**options: object) -> Registry:
        folder = tmp_path / f"registry{len(started)}"
        folder.mkdir()
        started.append(Registry(folder, **options))  # type: ignore[arg-type]
        return started[-1]

    yield make
    for reg in started:
        reg.stop()


def one_error_line(result: InvokeResult) -> str:
    """The failure as the user sees it: exit 2, no traceback, exactly one `error:` line."""
    assert result.code == 2, f"exit {result.code}:\n{result.out[-2000:]}\n{result.err[-3000:]}"
    assert "Traceback" not in result.err, result.err[-3000:]
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err[-3000:]
    return errors[0]


def private_docker_config(tmp_path: Path) -> dict[str, str]:
    """A DOCKER_CONFIG of the test's own, so a login attempt touches nobody else's credentials."""
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    return {"DOCKER_CONFIG": str(folder)}


def test_a_wrong_registry_password_says_unauthorized(make_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = make_registry(login=("builder", "the-right-password"))
    result = invoke("publish", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{reg.address}/epbuild",
                    env={**private_docker_config(tmp_path), "EPBUILD_REGISTRY_USER": "builder",
                         "EPBUILD_REGISTRY_PASSWORD": "a-wrong-password"})
    line = one_error_line(result)
    assert "docker login" in line and reg.address in line, line
    assert "unauthorized" in line.lower(), line  # the registry's own word, as docker reports it
    assert "a-wrong-password" not in result.out + result.err


def test_a_read_only_registry_refuses_the_push(make_registry, offline_build: InvokeResult,  # type: ignore[no-untyped-def]
                                               tmp_path: Path) -> None:
    reg = make_registry(read_only=True)
    result = invoke("publish", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{reg.address}/epbuild",
                    env=private_docker_config(tmp_path))
    line = one_error_line(result)
    assert "docker push" in line, line
    # distribution in maintenance mode refuses the upload's POST with 405 (registry/handlers/app.go); docker
    # says which request got which status.
    assert "405 method not allowed" in line.lower() and "blobs/uploads" in line, line


def test_a_registry_serving_a_broken_layer_fails_the_pull(make_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = make_registry()
    cell = cells_json()[CELL]
    name = f"epbuild/{cell['image'].split(':')[0]}"
    tag = f"{CELL}-{cell['content_key'][:12]}"
    # A layer the local engine has never seen (random bytes), so docker must download it.
    # Labelled with this checkout's key, so pull gets past its label check to the download itself.
    layer = put_image(reg.address, name, tag, {"broken-layer-probe": os.urandom(64 * 1024)},
                      labels={KEY_LABEL: cell["content_key"]})
    blob = reg.blob_path(layer)
    good = blob.read_bytes()
    blob.write_bytes(good[:100] + bytes(b ^ 0xFF for b in good[100:200]) + good[200:])
    result = invoke("pull", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{reg.address}/epbuild",
                    env=private_docker_config(tmp_path))
    line = one_error_line(result)
    assert "docker pull" in line and name in line, line
    # containerd's own words for content that does not hash to its digest
    assert f"expected {layer}" in line and "unexpected commit digest" in line, line


def path_without_docker(tmp_path: Path) -> str:
    """A PATH with every program of the real one except docker (git, tar and the rest stay)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for program in Path(folder).iterdir():
            target = bin_dir / program.name
            if program.name == "docker" or program.name.startswith("docker-") or target.exists():
                continue
            target.symlink_to(program)
    assert shutil.which("docker", path=str(bin_dir)) is None and shutil.which("git", path=str(bin_dir))
    return str(bin_dir)


@pytest.mark.parametrize("task", ["build", "test", "publish", "pull"])
def test_a_missing_docker_cli_is_named(task: str, tmp_path: Path, docker_engine: None) -> None:
    extra = ["--registry", "127.0.0.1:9/epbuild"] if task in ("publish", "pull") else []
    result = invoke(task, "--matrix", OFFLINE, "--cell", CELL, *extra, env={"PATH": path_without_docker(tmp_path)})
    line = one_error_line(result)
    assert "`docker` is not installed or not on PATH" in line, line
