"""The command line a new user meets: help, short flags, where --matrix paths resolve, conflicting options,
dry runs that touch nothing, and the errors for an excluded cell and an unquoted numeric commit."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.model.cells import excluded, expand, select
from epbuild.model.matrix import load_matrix
from epbuild.model.yamlfile import dump_yaml
from epbuild.util.errors import EpbuildError, MatrixError

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ROOT / "examples" / "offline" / "matrix.yaml"
TASKS = ["matrix", "render", "schema", "build", "sources", "test", "publish", "pull", "ci", "gc"]


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def flags(task: str) -> dict[str, str]:
    """short flag -> long option, as `invoke TASK --help` lists them."""
    out = run(task, "--help").stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s+-(\w)(?: \w+)?, --([\w-]+)", out, re.M)}


def test_build_dash_h_prints_help() -> None:
    proc = run("build", "-h")
    assert proc.returncode == 0, proc.stderr
    assert "Options:" in proc.stdout and "--cache-from" in proc.stdout


def test_short_flags_mean_the_same_in_every_task() -> None:
    seen: dict[str, set[str]] = {}
    for task in TASKS:
        for short, long in flags(task).items():
            seen.setdefault(short, set()).add(long)
    assert "h" not in seen
    assert {short: longs for short, longs in seen.items() if len(longs) > 1} == {}
    assert seen["m"] == {"matrix"} and seen["c"] == {"cell"}


def test_matrix_path_resolves_against_the_current_folder() -> None:
    proc = run("matrix", "--json", "--matrix", "matrix.yaml", cwd=OFFLINE.parent)
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)["matrix"]) == OFFLINE


def test_detect_with_an_explicit_selection_is_an_error() -> None:
    proc = run("pull", "--detect", "--arch", "gfx950", "--nic", "cx7", "--dry-run")
    assert proc.returncode == 2
    assert "--detect" in proc.stderr and "cannot be combined" in proc.stderr


def test_dry_runs_contact_no_engine_and_no_registry(tmp_path: Path) -> None:
    """A `docker` first on PATH that records any call: a dry run must never run it."""
    marker = tmp_path / "docker-was-called"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    for task in ("build", "publish", "pull"):
        proc = run(task, "--matrix", str(OFFLINE), "--cell", "gfx950-cx7-sid", "--dry-run", env=env)
        assert proc.returncode == 0, f"{task}: {proc.stderr}"
        assert "docker" in proc.stdout, f"{task} printed no command:\n{proc.stdout}"
    assert not marker.exists(), marker.read_text()


def test_an_excluded_cell_is_named_as_excluded() -> None:
    matrix = load_matrix(OFFLINE).model  # excludes gfx950 and cx7 on trixie
    cells = expand(matrix)
    with pytest.raises(EpbuildError, match="gfx950-thor2-trixie is excluded"):
        select(cells, ["gfx950"], ["thor2"], everything=False, bases=["trixie"], excluded=excluded(matrix))
    with pytest.raises(EpbuildError, match="gfx942-cx7-trixie is excluded"):
        select(cells, [], [], everything=False, names=["gfx942-cx7-trixie"], excluded=excluded(matrix))


def test_fat_arch_spellings_are_one_cell(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(OFFLINE.read_text())
    data["axes"] = {"arch": ["gfx950+gfx942"], "nic": ["cx7", "thor2"], "base": ["sid"]}
    data["exclude"] = []
    data["include"] = [{"arch": "gfx942+gfx950", "nic": "thor2", "base": "sid"}]
    path = tmp_path / "matrix.yaml"
    path.write_text(dump_yaml(data))
    cells = expand(load_matrix(path).model)
    assert [c.name for c in cells] == ["gfx942_gfx950-cx7", "gfx942_gfx950-thor2"]
    assert [c.name for c in select(cells, ["gfx950+gfx942"], ["cx7"], everything=False)] == ["gfx942_gfx950-cx7"]


def test_a_numeric_commit_says_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yaml"
    pinned = load_matrix(OFFLINE).model.components.deepep.commit
    path.write_text(OFFLINE.read_text().replace(f"commit: {pinned}", "commit: 4558723"))
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert "components.deepep.commit" in str(info.value) and "quote it" in str(info.value)


@pytest.mark.parametrize("cache_args,doing", [
    (["--stage", "vllm"], "--stage vllm"),
    ([], "--cache-export all"),
    (["--cache-export", "own"], "--cache-export own"),
])
def test_a_local_tree_never_writes_the_stage_cache(tmp_path: Path, cache_args: list[str], doing: str) -> None:
    """The stage cache's refs carry the pins' stage identities: a build from a local tree is refused before any
    fetch when it would write them (a --stage target would also be laid out from the pinned tree, not the local
    one), with one line naming the local tree and the flag that writes."""
    proc = run("build", "--dry-run", "--cell", "gfx950-cx7", "--cache", "registry.example.com/stages",
               *cache_args, "--source", f"vllm={tmp_path}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"--source vllm={tmp_path}: a build from a local tree does not write the stage cache ({doing}" \
        in proc.stderr, proc.stderr
    assert "--cache-export none" in proc.stderr


def test_a_local_tree_may_read_the_stage_cache(tmp_path: Path) -> None:
    proc = run("build", "--dry-run", "--cell", "gfx950-cx7", "--cache", "registry.example.com/stages",
               "--cache-export", "none", "--source", f"vllm={tmp_path}")
    assert "does not write the stage cache" not in proc.stderr, proc.stderr
