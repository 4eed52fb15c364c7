"""Issue 5: publish -> remove -> pull -> test against a real registry on 127.0.0.1; republishing pushes nothing;
pulling an unpublished key explains itself; a push killed midway leaves the moving tag on the old image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

from epbuild.offline import matrix_variant
from epbuild.registry import remote_digest
from harness import OFFLINE, ROOT, InvokeResult, cells_json, invoke
from registry import Registry

CELL = "gfx950-cx7-sid"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def published(registry: Registry, offline_build: InvokeResult) -> dict[str, str]:
    result = invoke("publish", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{registry.address}/epbuild",
                    check=True)
    assert " pushed (" in result.out
    cell = cells_json()[CELL]
    repository = f"{registry.address}/epbuild/{cell['image'].split(':')[0]}"
    immutable = f"{repository}:{CELL}-{cell['content_key'][:12]}"
    digest = remote_digest(immutable)
    assert digest and remote_digest(f"{repository}:{CELL}") == digest
    return {"repository": repository, "immutable": immutable, "moving": f"{repository}:{CELL}", "digest": digest,
            "local": cell["image"]}


def repo_digests(image: str) -> list[str]:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_publish_remove_pull_and_check(registry: Registry, published: dict[str, str]) -> None:
    subprocess.run(["docker", "rmi", "--force", published["local"], published["immutable"], published["moving"]],
                   capture_output=True, check=True)
    assert subprocess.run(["docker", "image", "inspect", published["local"]], capture_output=True).returncode != 0
    pulled = invoke("pull", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{registry.address}/epbuild",
                    check=True)
    assert published["digest"] in pulled.out
    assert f"{published['repository']}@{published['digest']}" in repo_digests(published["local"])
    checked = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--quiet")
    assert checked.code == 0, checked.out + checked.err


def test_republishing_an_unchanged_cell_pushes_nothing(registry: Registry, published: dict[str, str]) -> None:
    again = invoke("publish", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{registry.address}/epbuild",
                   check=True)
    assert "nothing pushed" in again.out and "moving tags already there" in again.out
    assert "docker push" not in (again.run_dir / "replay.sh").read_text()


def moved_matrix(tmp_path: Path) -> Path:
    """The offline matrix with vLLM moved to the stand-in's other commit (same image name and registry)."""
    path = matrix_variant(tmp_path, moved=["vllm"])
    invoke("render", "--matrix", str(path), check=True)
    return path


def test_pulling_a_key_the_registry_lacks_says_so(registry: Registry, published: dict[str, str],
                                                   tmp_path: Path) -> None:
    matrix = moved_matrix(tmp_path)
    result = invoke("pull", "--matrix", str(matrix), "--cell", CELL, "--registry", f"{registry.address}/epbuild")
    assert result.code != 0
    assert "the registry has no image for this checkout's content key" in result.err
    assert f"The moving tag {published['moving']} exists" in result.err
    assert "differs from this checkout in 1 input(s): vllm:" in result.err


def test_a_push_killed_midway_leaves_the_moving_tag_on_the_old_image(registry: Registry,
                                                                       published: dict[str, str],
                                                                       tmp_path: Path) -> None:
    matrix = moved_matrix(tmp_path)
    invoke("build", "--matrix", str(matrix), "--cell", CELL, "--quiet", check=True)
    registry.relay.throttle = True
    registry.relay.layer_bytes = 0
    try:
        publisher = subprocess.Popen(
            [sys.executable, "-m", "invoke", "publish", "--matrix", str(matrix), "--cell", CELL, "--registry",
             f"{registry.address}/epbuild"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 120
        while registry.relay.layer_bytes < 8 * 1024:  # into a layer's body: the manifest goes only after all layers
            assert publisher.poll() is None, "the publish ended before a layer upload was caught"
            assert time.monotonic() < deadline, "no upload reached the registry"
            time.sleep(0.05)
        os.killpg(publisher.pid, signal.SIGKILL)
        publisher.wait()
    finally:
        registry.relay.throttle = False
    assert remote_digest(published["moving"]) == published["digest"]
    pulled = subprocess.run(["docker", "pull", "--quiet", published["moving"]], capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    # Put the default matrix's image back for whatever runs next.
    invoke("pull", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"{registry.address}/epbuild", check=True)


def test_pull_build_builds_what_the_registry_lacks(registry: Registry, offline_build: InvokeResult) -> None:
    result = invoke("pull", "--matrix", OFFLINE, "--cell", "gfx942-thor2-sid", "--registry",
                    f"{registry.address}/nothing-here", "--build")
    assert result.code == 0, result.out + result.err
    assert "the registry has no image for this checkout's content key" in result.out
    assert "building it instead" in result.out and "gfx942-thor2-sid  ok" in result.out
