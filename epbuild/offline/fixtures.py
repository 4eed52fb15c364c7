"""The stand-in repositories: examples/offline/fixtures/<component>/ as bare repos with a `pinned`, a `moved`
and (deepep) a `broken` commit, plus their submodule repos and rdma-core's."""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path

from epbuild.model.component import Registry, discover
from epbuild.offline.gitrepo import (
    FixtureRepo,
    _Commit,
    _digest,
    _Entry,
    _install_repo,
    _read_tree,
    _submodule_repo_name,
    _submodules,
)
from epbuild.offline.overlays import overlays as fixture_overlays
from epbuild.offline.rdma_core_source import _rdma_core_repo
from epbuild.offline.settings import (
    BROKEN_COMPONENTS,
    BROKEN_SNIPPET,
    FIXTURE_TAGS,
    REV_FILE,
    OfflineError,
    _locked,
    _sha256,
)
from epbuild.util import atomicfs

log = logging.getLogger(__name__)



def _tree_digest(tree: Sequence[_Entry]) -> list[tuple[str, str, str]]:
    return [(e.path, e.mode, _sha256(e.data)) for e in tree]


def _rev_file(name: str, tree: Sequence[_Entry]) -> _Entry:
    found = [e for e in tree if e.path.rsplit("/", 1)[-1] == REV_FILE]
    if len(found) != 1 or b'-fixture-rev-A"' not in found[0].data:
        raise OfflineError(f"fixture {name}: expected exactly one {REV_FILE} with a '-fixture-rev-A\"' marker")
    return found[0]


def _component_commits(name: str, tree: list[_Entry], gitlinks: list[_Entry],
                       overlays: list[tuple[str, list[_Entry]]]) -> list[_Commit]:
    rev = _rev_file(name, tree)
    moved = _Entry(rev.path, rev.mode, rev.data.replace(b'-fixture-rev-A"', b'-fixture-rev-B"'))
    commits = [
        _Commit("pinned", f"{name}: stand-in fixture (pinned)\n", tuple(tree + gitlinks)),
        _Commit("moved", f"{name}: move the revision string compiled into device code\n", (moved,)),
    ]
    if name in BROKEN_COMPONENTS:
        broken = _Entry(rev.path, rev.mode, moved.data + BROKEN_SNIPPET.encode())
        commits.append(_Commit("broken", f"{name}: break the gfx942 build on purpose\n", (broken,)))
    for key, files in overlays:
        commits.append(_Commit(key, f"{name}: {key} (files from fixture@{key}/)\n", tuple(files), "pinned"))
    return commits


def _simple_repo(dest: Path, name: str, src: Path) -> FixtureRepo:
    tree = _read_tree(src)
    commits = [_Commit("pinned", f"{name}: stand-in fixture\n", tuple(tree))]
    return _install_repo(
        dest, name, _digest(name, _tree_digest(tree)), commits, {"refs/heads/fixture/pinned": "pinned"}
    )


def _component_repo(dest: Path, name: str, fixture: Path, fixtures_dir: Path,
                    done: dict[str, FixtureRepo]) -> FixtureRepo:
    tree = _read_tree(fixture)
    gitlinks: list[_Entry] = []
    for sub_path, url in _submodules(tree):
        sub_name = _submodule_repo_name(url)
        if sub_name not in done:
            done[sub_name] = _simple_repo(dest, sub_name, fixtures_dir / sub_name)
        if any(e.path == sub_path or e.path.startswith(sub_path + "/") for e in tree):
            raise OfflineError(f"fixture {name}: submodule path {sub_path} must not exist in the fixture")
        gitlinks.append(_Entry(sub_path, "160000", done[sub_name].commits["pinned"].encode()))
    overlays = fixture_overlays(fixture, tree)
    commits = _component_commits(name, tree, gitlinks, overlays)
    refs = {"refs/heads/main": "pinned", **{f"refs/heads/fixture/{c.key}": c.key for c in commits}}
    tag = FIXTURE_TAGS.get(name)
    if tag is not None:
        refs[f"refs/tags/{tag}"] = "pinned"
    digest = _digest(
        name, _tree_digest(tree), [(g.path, g.data) for g in gitlinks], BROKEN_SNIPPET, name in BROKEN_COMPONENTS,
        [(key, _tree_digest(files)) for key, files in overlays], tag,
    )
    return _install_repo(dest, name, digest, commits, refs, tag)



ARCHIVE_FOLDER = "fixture-archive"
"""A component folder's stand-in for a source archive its stage reads besides its repository (vLLM's triton
kernels); packed as ``<dest>/<name>-archive.tar``."""


def _fixture_archive(dest: Path, name: str, src: Path) -> Path:
    """A byte-reproducible tar of ``src`` (README.md left out): sorted, mtime 0, root-owned, fixed modes, so a
    matrix can pin its sha256."""
    out = dest / f"{name}-archive.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(p for p in src.rglob("*") if p.relative_to(src).as_posix() != "README.md"):
            info = tarfile.TarInfo(path.relative_to(src).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    if not out.is_file() or out.read_bytes() != buf.getvalue():
        atomicfs.write_bytes(out, buf.getvalue())
    return out


def ensure_fixture_repos(dest: Path, *, fixtures_dir: Path, registry: Registry | None = None) -> dict[str, FixtureRepo]:
    """Make ``<dest>/<name>.git`` for every component's stand-in (its folder's ``fixture/``; submodule stand-ins
    come from ``fixtures_dir``), idempotent, and write ``<dest>/commits.json``.

    Returns the repos by name: the components, their submodule repos and rdma-core.
    """
    dest = Path(dest).resolve()
    fixtures_dir = Path(fixtures_dir).resolve()
    with _locked(dest):
        for leftover in dest.glob(".*.git.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        repos: dict[str, FixtureRepo] = {}
        for component in (registry or discover()).components:
            if component.fixture.is_dir():
                repos[component.name] = _component_repo(dest, component.name, component.fixture, fixtures_dir, repos)
            if (component.folder / ARCHIVE_FOLDER).is_dir():
                _fixture_archive(dest, component.name, component.folder / ARCHIVE_FOLDER)
        repos["rdma-core"] = _rdma_core_repo(dest)
        summary = {
            name: {"repo": repo.path.name, "commits": repo.commits, "tag": repo.tag}
            for name, repo in sorted(repos.items())
        }
        atomicfs.write_text(dest / "commits.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return repos


