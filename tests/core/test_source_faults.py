"""Issue 14 item 2: an export is reused only while it is the commit's tree, a run killed at any point leaves
nothing a later run takes as good, and what kills and failed URLs leave behind is cleaned up. The expected
trees come from git's own `git archive | tar -x`, not from epbuild."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sources import git, make_repo

from epbuild.inputs.source_requests import SourceError, SourceRequest
from epbuild.inputs.sources import SourceCache
from epbuild.model.matrix import SourcePin
from epbuild.util.commands import Runner

ROOT = Path(__file__).resolve().parents[2]
FILES = 800  # enough that an export takes a while, so kills land inside it

EXPORT = """
import sys
from pathlib import Path
from epbuild.util.commands import Runner
from epbuild.model.matrix import SourcePin
from epbuild.inputs.source_requests import SourceRequest
from epbuild.inputs.sources import SourceCache
root, url, commit = sys.argv[1:4]
print("cached" if SourceCache(Path(root), Runner()).export(
    SourceRequest("vllm", SourcePin(repo=url, commit=commit), url)).cached else "exported")
"""

# Stands in for git on PATH: runs the real one, but stalls the subcommand named by $STALL (archive: once the
# archive is written, before it is extracted; init: once the repository exists) and touches $STALL_SIGNAL, so
# the test can SIGKILL the export exactly there.
STALLING_GIT = """#!/bin/bash
case " $* " in
  *" archive "*)
    if [ "$STALL" = archive ]; then
      "$REAL_GIT" "$@" | { head -c 300000; touch "$STALL_SIGNAL"; sleep 600; cat; }
      exit "${PIPESTATUS[0]}"
    fi ;;
  *" init "*)
    if [ "$STALL" = init ]; then "$REAL_GIT" "$@"; touch "$STALL_SIGNAL"; sleep 600; exit 0; fi ;;
esac
exec "$REAL_GIT" "$@"
"""


@pytest.fixture
def big_repo(tmp_path: Path) -> tuple[str, str]:
    repo = tmp_path / "vllm"
    files = {f"vllm/part{i // 100}/mod{i:04}.py": f"# {i}\n" + "x = 1\n" * 200 for i in range(FILES)}
    commit = make_repo(repo, {**files, "setup.py": "print('setup')\n"})
    return f"file://{repo}", commit


def git_tree(url: str, commit: str, dest: Path) -> dict[str, bytes]:
    """The commit's files as git itself writes them out."""
    dest.mkdir()
    archive = subprocess.run(["git", "-C", url.removeprefix("file://"), "archive", "--format=tar", commit],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return files_of(dest)


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def request(url: str, commit: str) -> SourceRequest:
    return SourceRequest("vllm", SourcePin(repo=url, commit=commit), url)


def leftovers(root: Path) -> list[str]:
    """Everything under build/ but the mirrors, the exports, their records and lock files."""
    build = root / "build"
    return sorted(str(p.relative_to(build)) for p in [*build.glob("sources/*"), *build.glob("cache/git/*")]
                  if p.name.startswith(".") or p.name.endswith(".tar") or p.name.startswith("tmp"))


def spawn_export(root: Path, url: str, commit: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", EXPORT, str(root), url, commit], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stall_env(tmp_path: Path, what: str) -> tuple[dict[str, str], Path]:
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "git").write_text(STALLING_GIT)
    (shim / "git").chmod(0o755)
    signal_file = tmp_path / f"stalled-{what}"
    real_git = shutil.which("git")
    assert real_git
    env = {"PATH": f"{shim}:{os.environ['PATH']}", "REAL_GIT": real_git, "STALL": what,
           "STALL_SIGNAL": str(signal_file)}
    return env, signal_file


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the export ended before stalling: {proc.communicate()}"
        assert time.monotonic() < deadline, "the export never reached the stall point"
        time.sleep(0.02)


def test_an_edited_added_or_removed_file_makes_the_export_run_again(tmp_path, big_repo) -> None:  # type: ignore[no-untyped-def]
    url, commit = big_repo
    expected = git_tree(url, commit, tmp_path / "expected")
    cache = SourceCache(tmp_path / "root", Runner())
    out = cache.export(request(url, commit))
    assert files_of(out.path) == expected  # exactly the commit: no marker or record inside the tree
    assert stat.S_IMODE(out.path.stat().st_mode) == 0o755
    for spoil in (lambda p: (p / "setup.py").write_text("print('edited')\n"),
                  lambda p: (p / "vllm" / "part3" / "mod0300.py").unlink(),
                  lambda p: (p / "build").mkdir() or (p / "build" / "CMakeCache.txt").write_text("left\n")):
        spoil(out.path)
        again = cache.export(request(url, commit))
        assert not again.cached
        assert files_of(again.path) == expected
    (out.path / "setup.py").touch()  # a new mtime, the same content: still the export
    assert cache.export(request(url, commit)).cached


def test_an_export_killed_while_replacing_a_spoilt_one_is_redone(tmp_path, big_repo) -> None:  # type: ignore[no-untyped-def]
    url, commit = big_repo
    expected = git_tree(url, commit, tmp_path / "expected")
    root = tmp_path / "root"
    out = SourceCache(root, Runner()).export(request(url, commit))
    (out.path / "setup.py").write_text("print('edited')\n")
    env, stalled = stall_env(tmp_path, "archive")
    proc = spawn_export(root, url, commit, env)
    wait_for(stalled, proc)
    kill(proc)
    assert leftovers(root), "the kill should have left a temporary tree and its archive"
    again = SourceCache(root, Runner()).export(request(url, commit))
    assert not again.cached and files_of(again.path) == expected
    assert leftovers(root) == []


def test_a_mirror_killed_while_being_created_is_cleaned_up(tmp_path, big_repo) -> None:  # type: ignore[no-untyped-def]
    url, commit = big_repo
    root = tmp_path / "root"
    env, stalled = stall_env(tmp_path, "init")
    proc = spawn_export(root, url, commit, env)
    wait_for(stalled, proc)
    kill(proc)
    assert [p for p in (root / "build" / "cache" / "git").iterdir() if p.name.startswith(".")]
    SourceCache(root, Runner()).export(request(url, commit))
    assert leftovers(root) == []


def test_exports_killed_at_random_moments_never_leave_a_wrong_tree(tmp_path, big_repo) -> None:  # type: ignore[no-untyped-def]
    import random

    url, commit = big_repo
    expected = git_tree(url, commit, tmp_path / "expected")
    root = tmp_path / "root"
    rng = random.Random(14)
    for _ in range(6):
        proc = spawn_export(root, url, commit)
        time.sleep(rng.uniform(0.3, 1.5))  # from start-up (imports) to the end of an export
        kill(proc)
        result = SourceCache(root, Runner()).export(request(url, commit))
        assert files_of(result.path) == expected
        assert leftovers(root) == []
        (result.path / "vllm" / "part1" / "mod0100.py").write_text("spoilt\n")  # the next run must replace it


def test_a_wrong_url_leaves_no_empty_mirror(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "root"
    url = f"file://{tmp_path}/nowhere.git"
    with pytest.raises(SourceError):
        SourceCache(root, Runner(), retries=1).export(request(url, "a" * 40))
    assert [p.name for p in (root / "build" / "cache" / "git").iterdir() if not p.name.endswith(".lock")] == []


def test_a_mirror_keeps_its_pinned_commits_through_gc(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "upstream"
    commit = make_repo(repo, {"setup.py": "x\n"})
    (repo / "setup.py").write_text("y\n")
    git(repo, "commit", "-qam", "later")
    url = f"file://{repo}"
    root = tmp_path / "root"
    out = SourceCache(root, Runner()).export(request(url, commit))
    shutil.rmtree(repo)  # no network from here on
    shutil.rmtree(out.path)
    (mirror,) = [p for p in (root / "build" / "cache" / "git").iterdir() if p.name.endswith(".git")]
    subprocess.run(["git", "-C", str(mirror), "gc", "--quiet", "--prune=now"], check=True)
    again = SourceCache(root, Runner()).export(request(url, commit))
    assert (again.path / "setup.py").read_text() == "x\n"
