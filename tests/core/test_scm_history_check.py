"""The in-image version check (epbuild/checks/image/pins.py) recomputes a setuptools-scm version from the history the build
recorded computing it from, never from another one (issue 21: a history without the tag gave 0.1.1.dev1+g... for
an image rightly carrying 0.1.10.post3), and says it cannot check when that record is missing or stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.inputs import scm_version

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "epbuild" / "checks" / "image"))

from pins import setuptools_scm_version  # noqa: E402

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=ENV).stdout.strip()


@pytest.fixture
def histories(tmp_path: Path) -> tuple[Path, Path, str]:
    """(a bare history with the release tag, one of the same commits without tags, the tagged commit)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "pyproject.toml").write_text('[project]\nname = "amd-aiter"\ndynamic = ["version"]\n'
                                         '[tool.setuptools_scm]\n')
    git("-C", str(work), "init", "-q")
    git("-C", str(work), "add", "-A")
    git("-C", str(work), "commit", "-q", "-m", "first")
    git("-C", str(work), "commit", "-q", "--allow-empty", "-m", "release")
    git("-C", str(work), "tag", "v0.1.10.post3")
    commit = git("-C", str(work), "rev-parse", "HEAD")
    tagged, tagless = tmp_path / "tagged.git", tmp_path / "tagless.git"
    git("clone", "-q", "--bare", str(work), str(tagged))
    git("init", "-q", "--bare", str(tagless))
    git("-C", str(tagless), "fetch", "-q", "--no-tags", str(work), f"{commit}:refs/heads/main")
    return tagged, tagless, commit


def test_the_version_comes_from_the_history_the_build_recorded(tmp_path: Path,
                                                                histories: tuple[Path, Path, str]) -> None:
    tagged, tagless, commit = histories
    version = scm_version.compute(tagged, commit)
    assert version == "0.1.10.post3"
    scm_version.write(tmp_path / "checkout", "aiter", commit, version, history=tagged, url="https://x/aiter.git")
    record = scm_version.history_record(tmp_path / "checkout", "aiter", commit)
    # This checkout's mirror of the pin's URL has no tags: the check must not read it.
    source = {"git_dir": str(tagless), "commit": commit, "scm_history": str(record)}
    assert setuptools_scm_version(source) == "0.1.10.post3"
    assert scm_version.compute(tagless, commit) != version  # what recomputing from it would have expected


def test_without_the_builds_record_it_says_it_cannot_check(tmp_path: Path, histories: tuple[Path, Path, str]) -> None:
    _, tagless, commit = histories
    source = {"git_dir": str(tagless), "commit": commit, "scm_history": str(tmp_path / "missing.history.json")}
    with pytest.raises(AssertionError, match="cannot check the version of .*the build left no record"):
        setuptools_scm_version(source)
    with pytest.raises(AssertionError, match="cannot check"):
        setuptools_scm_version({"git_dir": str(tagless), "commit": commit})


def test_a_record_of_a_history_that_is_gone_cannot_be_checked(tmp_path: Path,
                                                              histories: tuple[Path, Path, str]) -> None:
    tagged, _, commit = histories
    scm_version.write(tmp_path, "aiter", commit, "0.1.10.post3", history=tmp_path / "gone.git", url="https://x/a")
    source = {"git_dir": str(tagged), "commit": commit,
              "scm_history": str(scm_version.history_record(tmp_path, "aiter", commit))}
    with pytest.raises(AssertionError, match="cannot check .*no longer exists"):
        setuptools_scm_version(source)
