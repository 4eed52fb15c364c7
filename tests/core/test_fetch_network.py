"""Issue 14, item 6: fetches against real misbehaving servers on 127.0.0.1. An https remote that fails a few
times is retried like git:// is; a server that stalls is given up on after git's low-speed limit,
not waited on forever; an ssh failure keeps ssh's own reason, not only its closing advice."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_sources import make_repo

from epbuild.inputs.source_requests import SourceError, SourceRequest
from epbuild.inputs.sources import SourceCache
from epbuild.model.matrix import SourcePin
from epbuild.util.commands import Runner

from netservers import FlakyGitServer, SilentServer, closed_port, self_signed


def bare_copy(repo: Path, root: Path) -> Path:
    bare = root / "stand-in.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo), str(bare)], check=True)
    return bare


def within(seconds: float, fn: Callable[[], object]) -> object:
    """fn's result, or a test failure if it has not returned after `seconds` (the old code waited forever)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test thread below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    return cert, key


def test_https_failures_are_retried_until_the_server_answers(tmp_path: Path, tls: tuple[Path, Path]) -> None:
    commit = make_repo(tmp_path / "work", {"setup.py": "v1"})
    bare_copy(tmp_path / "work", tmp_path / "served")
    server = FlakyGitServer(tmp_path / "served", failures=2, tls=tls, status=503)
    try:
        url = f"{server.url}/stand-in.git"
        cache = SourceCache(tmp_path / "root", Runner(), retries=4, backoff=0.05)
        out = cache.export(SourceRequest("vllm", SourcePin(repo=url, commit=commit), url))
    finally:
        server.stop()
    assert (out.path / "setup.py").read_text() == "v1"
    assert server.requests > 2  # it got past the failures, so the retries reached it


def test_https_failures_that_persist_name_the_status_and_the_attempts(tmp_path: Path,
                                                                     tls: tuple[Path, Path]) -> None:
    server = FlakyGitServer(tmp_path, failures=1000, tls=tls, status=503)
    try:
        url = f"{server.url}/stand-in.git"
        cache = SourceCache(tmp_path / "root", Runner(), retries=3, backoff=0.05)
        with pytest.raises(SourceError) as err:
            cache.export(SourceRequest("vllm", SourcePin(repo=url, commit="a" * 40), url))
    finally:
        server.stop()
    assert "503" in str(err.value) and "after 3 attempts" in str(err.value)
    assert server.requests == 3


def test_an_https_server_that_stalls_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    tls: tuple[Path, Path]) -> None:
    monkeypatch.setenv("EPBUILD_GIT_LOW_SPEED_TIME", "2")
    server = SilentServer(tls=tls)
    try:
        url = f"https://127.0.0.1:{server.port}/stand-in.git"
        cache = SourceCache(tmp_path / "root", Runner(), retries=2, backoff=0.05)
        start = time.monotonic()
        with pytest.raises(SourceError) as err:
            within(60, lambda: cache.export(SourceRequest("vllm", SourcePin(repo=url, commit="a" * 40), url)))
    finally:
        server.stop()
    assert time.monotonic() - start < 30
    assert "too slow" in str(err.value).lower(), str(err.value)


def test_an_ssh_failure_keeps_ssh_s_own_reason(tmp_path: Path) -> None:
    url = f"ssh://127.0.0.1:{closed_port()}/stand-in.git"
    cache = SourceCache(tmp_path / "root", Runner(), retries=1, backoff=0.05)
    with pytest.raises(SourceError) as err:
        within(60, lambda: cache.export(SourceRequest("vllm", SourcePin(repo=url, commit="a" * 40), url)))
    message = str(err.value)
    assert "Connection refused" in message, message  # ssh's reason, printed before git's closing advice
    assert "and the repository exists" not in message, message


def test_an_ssh_server_that_never_answers_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ssh waits for the server's greeting without end unless told otherwise (ConnectTimeout also bounds it)."""
    monkeypatch.setenv("EPBUILD_SSH_CONNECT_TIMEOUT", "2")
    server = SilentServer()
    try:
        url = f"ssh://127.0.0.1:{server.port}/stand-in.git"
        cache = SourceCache(tmp_path / "root", Runner(), retries=2, backoff=0.05)
        with pytest.raises(SourceError) as err:
            within(60, lambda: cache.export(SourceRequest("vllm", SourcePin(repo=url, commit="a" * 40), url)))
    finally:
        server.stop()
    assert "banner exchange" in str(err.value) and "after 2 attempts" in str(err.value), str(err.value)
