"""The host-computed version equals what the real setuptools-scm prints in a git checkout of the same commit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.inputs import scm_version

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, n: int) -> str:
    (repo / "f.txt").write_text(str(n))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"c{n}")
    return git(repo, "rev-parse", "HEAD")


def real_setuptools_scm(work: Path, bare: Path, sha: str, pyproject: str = "") -> str:
    """setuptools-scm itself, in a fresh checkout of `sha` (what a build from the git checkout would get)."""
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], env=GIT_ENV, check=True)
    git(work, "checkout", "-q", "--detach", sha)
    if pyproject:
        (work / "pyproject.toml").write_text(pyproject)
        git(work, "add", "-A")
        git(work, "-c", "user.name=t", "commit", "-q", "--amend", "--no-edit", "--date=2000-01-01")
    out = subprocess.run([sys.executable, "-m", "setuptools_scm", "--root", str(work)], capture_output=True,
                         text=True, check=True, cwd=work)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "w"
    work.mkdir()
    git(work, "init", "-q")
    shas = {"untagged": commit(work, 1)}
    commit(work, 2)
    shas["two-after-root"] = git(work, "rev-parse", "HEAD")
    shas["v1.2.0"] = commit(work, 3)
    git(work, "tag", "v1.2.0")
    commit(work, 4)
    shas["after-v1.2.0"] = commit(work, 5)
    shas["post-tag"] = commit(work, 6)
    git(work, "tag", "v0.1.10.post3")
    shas["after-post"] = commit(work, 7)
    bare = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], env=GIT_ENV, check=True)
    return bare, shas


@pytest.mark.parametrize("name", ["untagged", "two-after-root", "v1.2.0", "after-v1.2.0", "post-tag", "after-post"])
def test_matches_setuptools_scm(history: tuple[Path, dict[str, str]], tmp_path: Path, name: str) -> None:
    bare, shas = history
    assert scm_version.compute(bare, shas[name]) == real_setuptools_scm(tmp_path / "check", bare, shas[name])


def test_a_pin_at_a_tag_gets_that_tags_version(history: tuple[Path, dict[str, str]]) -> None:
    bare, shas = history
    assert scm_version.compute(bare, shas["v1.2.0"]) == "1.2.0"


def test_fallback_version_applies_only_without_a_tag(tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    git(work, "init", "-q")
    (work / "pyproject.toml").write_text('[tool.setuptools_scm]\nfallback_version = "0.1.0"\n')
    sha = commit(work, 1)
    bare = tmp_path / "m.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], env=GIT_ENV, check=True)
    out = subprocess.run([sys.executable, "-m", "setuptools_scm", "--root", str(work)], capture_output=True,
                         text=True, check=True, cwd=work).stdout.strip().splitlines()[-1]
    assert scm_version.compute(bare, sha, fallback="0.1.0") == out


def test_pretend_variable_normalizes_the_distribution_name() -> None:
    assert scm_version.pretend_variable("amd-aiter") == "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_AMD_AITER"
    assert scm_version.pretend_variable("mori") == "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_MORI"


def test_write_is_atomic_and_readable(tmp_path: Path) -> None:
    mirror = tmp_path / "cache" / "mori.git"
    path = scm_version.write(tmp_path, "mori", "a" * 40, "0.1.dev3+gabc", history=mirror, url="https://x/mori.git")
    assert path.read_text() == "0.1.dev3+gabc\n"
    assert [p.name for p in path.parent.iterdir()] == ["version"]  # the build context holds the version only
    record = json.loads(scm_version.history_record(tmp_path, "mori", "a" * 40).read_text())
    assert record == {"component": "mori", "commit": "a" * 40, "version": "0.1.dev3+gabc", "git_dir": str(mirror),
                      "url": "https://x/mori.git"}
    assert not list(path.parent.parent.glob(".*"))  # no temporary file left


def test_the_source_cache_fetches_the_tags_the_version_needs(history: tuple[Path, dict[str, str]],
                                                            tmp_path: Path) -> None:
    """A fetch by commit brings no tags; history_with_tags does, so the mirror gives the tagged version."""
    from epbuild.inputs.source_requests import SourceRequest
    from epbuild.inputs.sources import SourceCache
    from epbuild.model.pins import SourcePin
    from epbuild.util.commands import Runner

    bare, shas = history
    pin = SourcePin(repo=bare.as_uri(), commit=shas["after-v1.2.0"])
    cache = SourceCache(tmp_path / "root", Runner())
    cache.export(SourceRequest("mori", pin, pin.repo))
    mirror = cache.history_with_tags(SourceRequest("mori", pin, pin.repo))
    expected = real_setuptools_scm(tmp_path / "check", bare, shas["after-v1.2.0"])
    assert scm_version.compute(mirror, shas["after-v1.2.0"]) == expected and expected.startswith("1.2.1.dev2+g")


@pytest.mark.parametrize("name", ["untagged", "v1.2.0", "after-v1.2.0", "post-tag"])
@pytest.mark.parametrize("change", ["edited", "untracked", "none"])
def test_a_local_checkout_gets_what_setuptools_scm_gives_it_dirty_marker_included(
        history: tuple[Path, dict[str, str]], tmp_path: Path, name: str, change: str) -> None:
    """--source: the version of a local checkout, uncommitted changes included (an edited tracked file makes it
    dirty, an untracked one does not), is the one setuptools-scm itself computes in that checkout."""
    bare, shas = history
    tree = tmp_path / "tree"
    subprocess.run(["git", "clone", "-q", str(bare), str(tree)], env=GIT_ENV, check=True)
    git(tree, "checkout", "-q", "--detach", shas[name])
    if change == "edited":
        (tree / "f.txt").write_text("my change")
    elif change == "untracked":
        (tree / "new.txt").write_text("new")
    expected = subprocess.run([sys.executable, "-m", "setuptools_scm", "--root", str(tree)], capture_output=True,
                              text=True, check=True, cwd=tree).stdout.strip().splitlines()[-1]
    got = scm_version.local_version(tree, git(tree, "rev-parse", "HEAD"), "sha256:" + "ab" * 32)
    assert got == expected
    assert bool(re.search(r"\.d\d{8}$", got)) == (change == "edited")  # setuptools-scm's dirty marker: the date


def test_a_local_tree_that_is_no_checkout_is_marked_local_with_its_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    assert scm_version.local_version(tmp_path, None, digest) == "0.0+local.0123456789abcdef"
    assert scm_version.local_version(tmp_path, None, digest, fallback="0.1.0") == "0.1.0+local.0123456789abcdef"
