"""Issue 14, item 6: nothing waits forever. A registry that accepts connections and never answers, a push that
crawls, image checks that hang and a bake that prints nothing are stopped after their limits (set small here
through their environment variables) and reported, against real servers and the real engine."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

from epbuild.build.bake_runs import Bakes, BakeStalled
from epbuild.build.progress import Progress
from epbuild.offline.settings import OFFLINE_BASE_IMAGE
from epbuild.util.commands import Runner

from harness import OFFLINE, InvokeResult, cells_json, invoke
from netservers import CrawlingRelay, SilentServer
from registry import Registry

CELL = "gfx950-cx7-sid"


def error_line(result: InvokeResult) -> str:
    assert result.code == 2, f"exit {result.code}:\n{result.out[-2000:]}\n{result.err[-3000:]}"
    assert "Traceback" not in result.err, result.err[-3000:]
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err[-3000:]
    return errors[0]


def test_a_registry_that_never_answers_is_given_up_on(tmp_path: Path, docker_engine: None) -> None:
    server = SilentServer()
    try:
        start = time.monotonic()
        result = invoke("pull", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"127.0.0.1:{server.port}/epbuild",
                        env={"EPBUILD_REGISTRY_TIMEOUT": "3", "DOCKER_CONFIG": str(tmp_path)}, timeout=120)
        took = time.monotonic() - start
    finally:
        server.stop()
    line = error_line(result)
    assert f"GET http://127.0.0.1:{server.port}/v2/epbuild/" in line and "did not finish within 3 s" in line, line
    assert "EPBUILD_REGISTRY_TIMEOUT" in line and took < 60


@pytest.fixture
def crawling_registry(tmp_path: Path, docker_engine: None) -> Iterator[tuple[Registry, CrawlingRelay]]:
    """A real registry behind a relay that passes uploads at 512 bytes/s: requests get through, layers do not."""
    reg = Registry(tmp_path)
    relay = CrawlingRelay(reg.port, bytes_per_second=512)
    try:
        yield reg, relay
    finally:
        relay.stop()
        reg.stop()
        listed = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                                capture_output=True, text=True).stdout.split()
        ours = [ref for ref in listed if ref.startswith(f"127.0.0.1:{relay.port}/")]
        if ours:  # the tags publish gave the image for this registry
            subprocess.run(["docker", "image", "rm", *ours], capture_output=True)


def test_a_push_that_crawls_is_stopped(crawling_registry: tuple[Registry, CrawlingRelay],
                                       offline_build: InvokeResult, tmp_path: Path) -> None:
    _, relay = crawling_registry
    result = invoke("publish", "--matrix", OFFLINE, "--cell", CELL, "--registry", f"127.0.0.1:{relay.port}/epbuild",
                    env={"EPBUILD_PUSH_TIMEOUT": "15", "DOCKER_CONFIG": str(tmp_path)}, timeout=600)
    line = error_line(result)
    assert "docker push" in line and "did not finish within 15 s" in line and "EPBUILD_PUSH_TIMEOUT" in line, line
    assert relay.uploaded > 0  # the push was under way when it was stopped


def offline_build_image() -> str:
    return cells_json()[CELL]["image"]


def test_image_checks_that_run_too_long_are_stopped(offline_build: InvokeResult) -> None:
    # By image reference: later tests may have rebuilt the cell since the session's build, and any image of the
    # cell serves to show the time limit.
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--quiet", "--image", offline_build_image(),
                    env={"EPBUILD_IMAGE_TEST_TIMEOUT": "3"}, timeout=300)
    assert result.code == 1, result.out + result.err
    assert f"{CELL}: error: the checks did not finish within 3 s" in result.out, result.out
    assert "EPBUILD_IMAGE_TEST_TIMEOUT" in result.out


def test_a_silent_bake_is_stopped_and_reported(tmp_path: Path, offline_build: InvokeResult,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A step that prints nothing for 10 minutes; a fresh nonce keeps it from being a cache hit.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {OFFLINE_BASE_IMAGE}\nRUN echo {uuid.uuid4().hex} && sleep 600\n")
    (tmp_path / "bake.json").write_text(json.dumps(
        {"target": {"stall": {"context": str(tmp_path), "dockerfile": "Dockerfile"}}}))
    argv = ["docker", "buildx", "bake", "--file", str(tmp_path / "bake.json"), "--progress", "plain", "stall"]
    start = time.monotonic()
    monkeypatch.setenv("EPBUILD_BAKE_SILENCE_TIMEOUT", "15")
    bakes = Bakes(lambda targets: list(argv), lambda targets: targets, {}, tmp_path, True, tmp_path, Progress(),
                   Runner(), ["stall"])
    with pytest.raises(BakeStalled) as err:
        bakes.run([["stall"]])
    took = time.monotonic() - start
    assert "printed nothing for 15 s and was stopped" in str(err.value)
    assert "EPBUILD_BAKE_SILENCE_TIMEOUT" in str(err.value) and "sleep 600" in str(err.value)
    assert took < 120
    assert "epbuild: bake printed nothing" in (tmp_path / "bake.log").read_text()
