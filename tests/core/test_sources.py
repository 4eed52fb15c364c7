"""The source cache against real git repositories on disk (file:// and relative paths, as mirrors are)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from epbuild.components.aiter import AiterPin
from epbuild.components.deepep import DeepepPin
from epbuild.components.rocshmem import RocshmemPin
from epbuild.inputs.source_requests import SourceError, SourceRequest, mirror_overrides, requests_for
from epbuild.inputs.sources import SourceCache
from epbuild.model.matrix import LoadedMatrix
from epbuild.model.pins import SourcePin
from epbuild.util.commands import Runner

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str], tag: str | None = None) -> str:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "c")
    if tag:
        git(path, "tag", tag)
    return git(path, "rev-parse", "HEAD")


@pytest.fixture
def cache(tmp_path: Path) -> SourceCache:
    return SourceCache(tmp_path / "root", Runner(), retries=2, backoff=0.01)


def test_exports_a_clean_tree_at_the_pinned_commit_and_then_needs_no_network(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "vllm"
    first = make_repo(repo, {"setup.py": "v1"})
    (repo / "setup.py").write_text("v2")
    git(repo, "commit", "-qam", "second")
    out = cache.export(SourceRequest("vllm", SourcePin(repo=f"file://{repo}", commit=first), f"file://{repo}"))
    assert out.commit == first and not out.cached
    assert (out.path / "setup.py").read_text() == "v1"
    assert not (out.path / ".git").exists()
    subprocess.run(["rm", "-rf", str(repo)], check=True)  # the "network" is gone
    again = cache.export(SourceRequest("vllm", SourcePin(repo=f"file://{repo}", commit=first), f"file://{repo}"))
    assert again.cached and again.path == out.path


def test_short_commit_and_tag_are_resolved_and_checked(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "rdma"
    full = make_repo(repo, {"CMakeLists.txt": "x"}, tag="v62.0")
    out = cache.export(SourceRequest("rdma-core", SourcePin(repo=f"file://{repo}", commit=full[:8], tag="v62.0"), str(repo)))
    assert out.commit == full
    (repo / "CMakeLists.txt").write_text("moved on")
    git(repo, "commit", "-qam", "after the tag")
    later = git(repo, "rev-parse", "HEAD")
    with pytest.raises(SourceError, match=r"tag v62.0 of .* is commit " + full):
        cache.export(SourceRequest("rdma-core", SourcePin(repo=f"file://{repo}", commit=later, tag="v62.0"), str(repo)))
    with pytest.raises(SourceError, match=r"has no " + "0" * 40):
        cache.export(SourceRequest("rdma-core", SourcePin(repo=f"file://{repo}", commit="0" * 40), str(repo)))


def test_missing_commit_names_component_url_and_commit(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "deepep"
    make_repo(repo, {"setup.py": "x"})
    with pytest.raises(SourceError) as info:
        cache.export(SourceRequest("deepep", DeepepPin(repo=f"file://{repo}", commit="abcdef1"), str(repo)))
    assert "deepep" in str(info.value) and str(repo) in str(info.value) and "abcdef1" in str(info.value)


def test_unreachable_repository_is_a_clear_error(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    url = f"file://{tmp_path}/nowhere.git"
    with pytest.raises(SourceError) as info:
        cache.export(SourceRequest("mori", SourcePin(repo=url, commit="a" * 40), url))
    assert "mori: cannot fetch" in str(info.value) and url in str(info.value)


def test_interrupted_export_leaves_nothing_taken_as_good(tmp_path, cache, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "aiter"
    commit = make_repo(repo, {"setup.py": "x"})
    request = SourceRequest("aiter", AiterPin(repo=f"file://{repo}", commit=commit), str(repo))

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(SourceCache, "_submodules", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.export(request)
    sources = cache.root / "build" / "sources"
    assert not (sources / f"aiter-{commit}").exists()
    assert [p.name for p in sources.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    assert (cache.export(request).path / "setup.py").is_file()


def test_sparse_folder_and_relative_submodules(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    third = tmp_path / "repos" / "third-party.git"
    sub_commit = make_repo(third, {"include/tp.h": "// tp"})
    mori = tmp_path / "repos" / "mori.git"
    mori.mkdir(parents=True)
    git(mori, "init", "-q")
    (mori / "setup.py").write_text("x")
    git(mori, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "../third-party.git", "3rdparty/tp")
    git(mori, "commit", "-qm", "with submodule")
    commit = git(mori, "rev-parse", "HEAD")
    out = cache.export(SourceRequest("mori", SourcePin(repo=f"file://{mori}", commit=commit), f"file://{mori}"))
    assert (out.path / "3rdparty" / "tp" / "include" / "tp.h").read_text() == "// tp"
    assert git(mori, "ls-tree", "HEAD", "3rdparty/tp").split()[2] == sub_commit

    systems = tmp_path / "repos" / "rocm-systems"
    commit = make_repo(systems, {"projects/rocshmem/CMakeLists.txt": "x", "projects/other/big.bin": "y"})
    pin = RocshmemPin(repo=f"file://{systems}", commit=commit)
    out = cache.export(SourceRequest("rocshmem", pin, str(systems), (pin.path,)))
    assert (out.path / "projects" / "rocshmem" / "CMakeLists.txt").is_file()
    assert not (out.path / "projects" / "other").exists()


def test_mirrors_from_environment_and_command_line(tmp_path: Path) -> None:
    env = {"EPBUILD_MIRROR_RDMA_CORE": "https://mirror.example.org/rdma-core.git"}
    assert mirror_overrides([], env) == {"rdma-core": "https://mirror.example.org/rdma-core.git"}
    assert mirror_overrides(["rdma-core=file:///srv/rdma.git"], env)["rdma-core"] == "file:///srv/rdma.git"
    with pytest.raises(SourceError, match="not an allowed repository URL"):
        mirror_overrides(["vllm=https://x.org/a;rm -rf /"], {})
    from epbuild.model.matrix import load_matrix

    matrix: LoadedMatrix = load_matrix(Path(__file__).resolve().parents[2] / "matrix.yaml")
    with pytest.raises(SourceError, match="unknown component"):
        requests_for(matrix, ["vllm"], {"vlm": "https://x.org/a"})
    (req,) = requests_for(matrix, ["vllm"], {"vllm": "../mirrors/vllm.git"})
    assert req.url == (matrix.directory / "../mirrors/vllm.git").resolve().as_uri()


def test_a_cached_export_is_checked_again_for_a_new_tag(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "rdma"
    commit = make_repo(repo, {"CMakeLists.txt": "x"})
    url = f"file://{repo}"
    cache.export(SourceRequest("rdma-core", SourcePin(repo=url, commit=commit, tag=None), url))
    with pytest.raises(SourceError, match="tag v99.9 .* is commit \\(missing\\)|has no"):
        cache.export(SourceRequest("rdma-core", SourcePin(repo=url, commit=commit, tag="v99.9"), url))
    git(repo, "tag", "v62.0")  # the mirror has the commit already, but not this tag: it must fetch the tag
    out = cache.export(SourceRequest("rdma-core", SourcePin(repo=url, commit=commit, tag="v62.0"), url))
    assert out.commit == commit and not out.cached


def test_hostile_submodule_urls_never_reach_git(tmp_path, cache) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "aiter"
    commit = make_repo(repo, {".gitmodules": '[submodule "ck"]\n\tpath = 3rdparty/ck\n\turl = --upload-pack=touch /tmp/pwned\n'})
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{commit},3rdparty/ck")
    git(repo, "commit", "-qm", "gitlink")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(SourceError, match="submodule 'ck'.*not an allowed repository URL"):
        cache.export(SourceRequest("aiter", AiterPin(repo=f"file://{repo}", commit=head), f"file://{repo}"))


def test_replay_script_rebuilds_the_export_by_itself(tmp_path: Path) -> None:
    repo = tmp_path / "vllm"
    commit = make_repo(repo, {"setup.py": "v1", "csrc/ops.cpp": "// ops"})
    replay = tmp_path / "replay.sh"
    cache = SourceCache(tmp_path / "root", Runner(replay=replay))
    out = cache.export(SourceRequest("vllm", SourcePin(repo=f"file://{repo}", commit=commit, tag=None), f"file://{repo}"))
    expected = {p.relative_to(out.path): p.read_bytes() for p in out.path.rglob("*") if p.is_file()}
    subprocess.run(["rm", "-rf", str(out.path), str(cache.git_dir)], check=True)
    subprocess.run(["bash", str(replay)], check=True, capture_output=True)
    replayed = {p.relative_to(out.path): p.read_bytes() for p in out.path.rglob("*") if p.is_file()}
    assert replayed == expected


def test_dry_run_prints_the_lines_a_real_run_records(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "deepep"
    commit = make_repo(repo, {"setup.py": "x"})
    request = SourceRequest("deepep", SourcePin(repo=f"file://{repo}", commit=commit, tag=None), f"file://{repo}")
    SourceCache(tmp_path / "root", Runner(dry_run=True)).export(request)
    printed = [l for l in capsys.readouterr().out.splitlines() if not l.startswith("#")]
    replay = tmp_path / "replay.sh"
    SourceCache(tmp_path / "root", Runner(replay=replay)).export(request)
    recorded = [l for l in replay.read_text().splitlines()[4:]]
    assert printed == recorded and len(recorded) == 3
