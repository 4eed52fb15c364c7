"""The git directory handed to a stage answers `git rev-parse --short HEAD` in an exported tree exactly as a git
checkout of the pin does (DeepEP's setup.py@a9ea9774 puts that answer in its version)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from epbuild.inputs import git_head
from epbuild.util.errors import EpbuildError

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env or GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, Path, str]:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    for n in range(3):
        (work / "setup.py").write_text(f"# {n}\n")
        git(work, "add", "-A")
        git(work, "commit", "-qm", f"c{n}")
    bare = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare, work, git(work, "rev-parse", "HEAD~1")


def short_head_in_export(root: Path, mirror: Path, commit: str, tmp_path: Path) -> str:
    """What setup.py's `git rev-parse --short HEAD` prints in the exported tree with the stage's GIT_DIR."""
    export = tmp_path / "export"
    export.mkdir(exist_ok=True)
    archive = subprocess.run(["git", "--git-dir", str(mirror), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
    env = {**GIT_ENV, "GIT_DIR": str(root / git_head.git_head_dir("deepep", commit))}
    return git(export, "rev-parse", "--short", "HEAD", env=env)


def test_an_exported_tree_answers_as_a_checkout_of_the_pin(mirror: tuple[Path, Path, str], tmp_path: Path) -> None:
    bare, work, commit = mirror
    git(work, "checkout", "-q", "--detach", commit)
    in_checkout = git(work, "rev-parse", "--short", "HEAD")
    full, short = git_head.short_revision(bare, commit[:8], where="deepep at test")
    git_head.write(tmp_path, "deepep", commit[:8], full, short)
    assert full == commit
    assert short_head_in_export(tmp_path, bare, commit[:8], tmp_path) == in_checkout


def test_the_abbreviation_length_of_the_history_is_kept(mirror: tuple[Path, Path, str], tmp_path: Path) -> None:
    # A large history abbreviates to more than git's minimum of 7; the written directory holds no objects, so it
    # must carry the length itself. core.abbrev stands in for a large history here.
    bare, _, commit = mirror
    git(bare, "config", "core.abbrev", "11")
    full, short = git_head.short_revision(bare, commit, where="deepep at test")
    git_head.write(tmp_path, "deepep", commit, full, short)
    assert short_head_in_export(tmp_path, bare, commit, tmp_path) == commit[:11]


def test_a_commit_missing_from_the_history_is_a_clear_error(mirror: tuple[Path, Path, str]) -> None:
    with pytest.raises(EpbuildError, match="deepep at 0123456: git rev-parse"):
        git_head.short_revision(mirror[0], "0123456789abcdef0123456789abcdef01234567", where="deepep at 0123456")


def test_a_local_checkout_answers_with_its_own_head(mirror: tuple[Path, Path, str], tmp_path: Path) -> None:
    """--source: the stage's git directory answers as the local checkout itself does, uncommitted changes aside."""
    _, work, _ = mirror
    (work / "setup.py").write_text("# my change\n")
    full, short = git_head.checkout_revision(work, where="deepep from the local tree")
    git_head.write(tmp_path, "deepep", "local-test", full, short)
    env = {**GIT_ENV, "GIT_DIR": str(tmp_path / git_head.git_head_dir("deepep", "local-test"))}
    assert git(tmp_path, "rev-parse", "--short", "HEAD", env=env) == git(work, "rev-parse", "--short", "HEAD")


def test_a_local_tree_that_is_no_checkout_gets_a_directory_where_git_fails(tmp_path: Path) -> None:
    """As outside any checkout, `git rev-parse HEAD` fails, so DeepEP's setup.py takes its plain 1.0.0."""
    git_head.write(tmp_path, "deepep", "local-nogit", None)
    env = {**GIT_ENV, "GIT_DIR": str(tmp_path / git_head.git_head_dir("deepep", "local-nogit"))}
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode != 0 and not done.stdout.strip()
