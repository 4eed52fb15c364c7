"""Mirrors cover submodules: a component fetched from a mirror takes its submodules (absolute URLs in .gitmodules,
as AITER's composable_kernel and MoRI's third-party code have) from mirrors too, so a site that reaches only its
mirrors exports the whole tree. The upstream URLs here point at a closed port of 127.0.0.1: unreachable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from epbuild.inputs.source_requests import SourceError, SourceRequest, mirror_overrides
from epbuild.inputs.sources import SourceCache
from epbuild.model.pins import SourcePin
from epbuild.util.commands import Runner

UPSTREAM = "https://127.0.0.1:9/upstream"
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
       "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin:/usr/local/bin"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def repo(mirrors: Path, name: str, files: dict[str, str], submodules: dict[str, tuple[str, str]]) -> str:
    """A bare repository mirrors/<name>.git with one commit: `files`, and gitlinks path -> (upstream URL, commit)."""
    work = mirrors / f"{name}-work"
    work.mkdir()
    git(work, "init", "-q")
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
        git(work, "add", path)
    if submodules:
        (work / ".gitmodules").write_text("".join(f'[submodule "{p}"]\n\tpath = {p}\n\turl = {url}\n'
                                                  for p, (url, _) in submodules.items()))
        git(work, "add", ".gitmodules")
        for path, (_, commit) in submodules.items():
            git(work, "update-index", "--add", "--cacheinfo", f"160000,{commit},{path}")
    git(work, "commit", "-q", "-m", name)
    git(mirrors, "clone", "-q", "--bare", str(work), f"{name}.git")
    git(mirrors / f"{name}.git", "config", "uploadpack.allowAnySHA1InWant", "true")
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
def mirrors(tmp_path: Path) -> tuple[Path, str]:
    site = tmp_path / "mirrors"
    site.mkdir()
    leaf = repo(site, "leaf", {"leaf.txt": "leaf\n"}, {})
    ck = repo(site, "composable_kernel", {"ck.txt": "ck\n"}, {"third/leaf": (f"{UPSTREAM}/leaf.git", leaf)})
    top = repo(site, "aiter", {"setup.py": "# aiter\n"},
               {"3rdparty/composable_kernel": (f"{UPSTREAM}/composable_kernel.git", ck)})
    return site, top


def request(site: Path, commit: str, **kw) -> SourceRequest:  # type: ignore[no-untyped-def]
    pin = SourcePin(repo=f"{UPSTREAM}/aiter.git", commit=commit)
    return SourceRequest("aiter", pin, (site / "aiter.git").as_uri(), **kw)


def test_a_mirrored_component_fetches_every_submodule_from_beside_its_mirror(
        tmp_path: Path, mirrors: tuple[Path, str]) -> None:
    site, top = mirrors
    exported = SourceCache(tmp_path / "root", Runner(), retries=1).export(request(site, top, mirrored=True))
    tree = exported.path
    assert (tree / "setup.py").read_text() == "# aiter\n"
    assert (tree / "3rdparty/composable_kernel/ck.txt").read_text() == "ck\n"
    assert (tree / "3rdparty/composable_kernel/third/leaf/leaf.txt").read_text() == "leaf\n"


def test_an_explicit_submodule_mirror_wins(tmp_path: Path, mirrors: tuple[Path, str]) -> None:
    site, top = mirrors
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ck = git(site / "composable_kernel.git", "rev-parse", "HEAD")
    git(elsewhere, "clone", "-q", "--bare", str(site / "composable_kernel.git"), "ck-copy.git")
    (site / "composable_kernel.git").rename(site / "gone.git")  # the sibling is not there: only the explicit one
    overrides = mirror_overrides([f"aiter/3rdparty/composable_kernel={(elsewhere / 'ck-copy.git').as_uri()}"], {})
    req = request(site, top, mirrored=True, submodule_mirrors=(
        ("3rdparty/composable_kernel", overrides["aiter/3rdparty/composable_kernel"]),))
    tree = SourceCache(tmp_path / "root", Runner(), retries=1).export(req).path
    assert (tree / "3rdparty/composable_kernel/ck.txt").read_text() == "ck\n" and ck


def test_without_a_mirror_the_submodule_goes_upstream(tmp_path: Path, mirrors: tuple[Path, str]) -> None:
    site, top = mirrors
    with pytest.raises(SourceError) as failed:
        SourceCache(tmp_path / "root", Runner(), retries=1, backoff=0).export(request(site, top))
    assert "127.0.0.1:9/upstream/composable_kernel.git" in str(failed.value)
