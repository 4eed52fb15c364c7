"""`requires`: a pin must contain the commits a component needs; a pin that lacks one fails with the reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_sources import git, make_repo

from epbuild.inputs.requirements import MissingRequirement, check
from epbuild.inputs.source_requests import SourceRequest
from epbuild.inputs.sources import SourceCache
from epbuild.model.pins import Requirement, SourcePin
from epbuild.model.yamlfile import dump_yaml
from epbuild.util.commands import Runner

REASON = "MHC accuracy fix (first released in v0.1.14)"


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """old -> fix -> new on main, and a side branch from old that never got the fix."""
    repo = tmp_path / "aiter"
    old = make_repo(repo, {"a.txt": "old"})
    (repo / "a.txt").write_text("fix")
    git(repo, "commit", "-qam", "the fix")
    fix = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("new")
    git(repo, "commit", "-qam", "after the fix")
    new = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "side", old)
    (repo / "b.txt").write_text("side")
    git(repo, "add", "b.txt")
    git(repo, "commit", "-qm", "side work")
    side = git(repo, "rev-parse", "HEAD")
    return repo, {"old": old, "fix": fix, "new": new, "side": side}


def fetched(tmp_path: Path, repo: Path, commit: str, fix: str) -> tuple[SourceCache, SourcePin]:
    pin = SourcePin(repo=repo.as_uri(), commit=commit, requires=[Requirement(commit=fix, reason=REASON)])
    cache = SourceCache(tmp_path / "root", Runner(), retries=1, backoff=0.01)
    cache.export(SourceRequest("aiter", pin, repo.as_uri()))
    return cache, pin


def test_a_pin_that_contains_the_fix_passes(tmp_path: Path, history: tuple[Path, dict[str, str]]) -> None:
    repo, c = history
    for commit in (c["fix"], c["new"]):
        cache, pin = fetched(tmp_path, repo, commit, c["fix"])
        check("aiter", cache.mirror_for(repo.as_uri()), pin, commit)


@pytest.mark.parametrize("which", ["old", "side"])
def test_a_pin_without_the_fix_fails_with_the_reason(tmp_path: Path, history: tuple[Path, dict[str, str]],
                                                     which: str) -> None:
    repo, c = history
    cache, pin = fetched(tmp_path, repo, c[which], c["fix"])
    with pytest.raises(MissingRequirement) as info:
        check("aiter", cache.mirror_for(repo.as_uri()), pin, c[which])
    assert c["fix"] in str(info.value) and REASON in str(info.value) and "aiter" in str(info.value)


def test_the_build_checks_requires_when_it_fetches(tmp_path: Path, history: tuple[Path, dict[str, str]]) -> None:
    """`invoke sources` (the fetch `invoke build` runs) on a matrix whose AITER pin lacks its required fix."""
    import yaml

    repo, c = history
    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "examples" / "offline" / "matrix.yaml").read_text())
    del data["prepare"]
    for name in ("rocshmem", "deepep", "mori", "vllm", "ucx", "nixl"):
        files = {"projects/rocshmem/CMakeLists.txt": "x"} if name == "rocshmem" else {"setup.py": name}
        data["components"][name].pop("tag", None)
        data["components"][name].update(repo=(tmp_path / name).as_uri(), commit=make_repo(tmp_path / name, files))
    data["components"]["aiter"].pop("tag", None)
    data["components"]["aiter"].update(repo=repo.as_uri(), commit=c["old"],
                                       requires=[{"commit": c["fix"], "reason": REASON}])
    path = tmp_path / "matrix.yaml"
    path.write_text(dump_yaml(data))
    proc = subprocess.run(["python3", "-m", "invoke", "sources", "--matrix", str(path), "--cell", "gfx950-thor2-sid"],
                          cwd=root, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"lacks required commit(s): {c['fix']} ({REASON})" in proc.stderr
