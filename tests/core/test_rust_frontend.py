"""vLLM's Rust frontend, hermetic: crates vendored on the host with the real cargo (verified on reuse, an offline
build from them succeeds), the base's toolchain checked against the pin's rust-toolchain.toml before any build,
and the stand-in's setup.py failing without setuptools-rust as the real one does."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.build import prebake_checks
from epbuild.build.source_trees import Scope, Trees
from epbuild.components import vllm
from epbuild.inputs import cargo_vendor, rust_toolchain
from epbuild.inputs.cargo_vendor import CargoVendorError
from epbuild.inputs.preflight import PreflightError
from epbuild.model.matrix import load_matrix
from epbuild.render.dockerfiles import render_matrix
from epbuild.util.commands import Runner
from epbuild.util.paths import source_dir

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = vllm.COMPONENT.fixture


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A Cargo workspace whose one dependency is not a path crate (a git crate, the kind `cargo vendor` copies
    like a crates.io one), locked; returns (workspace, the dependency's repository)."""
    leaf = tmp_path / "leaf"
    (leaf / "src").mkdir(parents=True)
    (leaf / "Cargo.toml").write_text('[package]\nname = "leaf"\nversion = "0.3.1"\nedition = "2021"\n')
    (leaf / "src" / "lib.rs").write_text('pub fn answer() -> u32 { 42 }\n')
    git(leaf, "init", "-q")
    git(leaf, "add", ".")
    git(leaf, "commit", "-qm", "leaf")
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                   f'[dependencies]\nleaf = {{ git = "file://{leaf}" }}\n')
    (ws / "src" / "main.rs").write_text('fn main() { println!("{}", leaf::answer()); }\n')
    subprocess.run(["cargo", "generate-lockfile"], cwd=ws, env={**os.environ, "CARGO_HOME": str(tmp_path / "h0")},
                   check=True, capture_output=True)
    return ws, leaf


def test_vendored_crates_build_offline_locked_without_their_source(workspace: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    ws, leaf = workspace
    root = tmp_path / "root"
    dest = cargo_vendor.ensure(root, "demo", "c" * 40, ws, Runner())
    assert dest == root / "build" / "crates" / f"demo-{'c' * 40}"
    assert [p.name for p in (dest / "vendor").iterdir()] == ["leaf-0.3.1"]
    config = (dest / "config.toml").read_text()
    assert f'directory = "{cargo_vendor.IN_STAGE}/vendor"' in config and "offline = true" in config

    shutil.rmtree(leaf)  # the crate's source is gone: only the vendored copy can build it
    home = tmp_path / "fresh-cargo-home"
    home.mkdir()
    (home / "config.toml").write_text(config.replace(cargo_vendor.IN_STAGE, str(dest)))
    subprocess.run(["cargo", "build", "--offline", "--locked", "--target-dir", str(tmp_path / "target")], cwd=ws,
                   env={**os.environ, "CARGO_HOME": str(home)}, check=True, capture_output=True)
    run = subprocess.run([str(tmp_path / "target" / "debug" / "app")], check=True, capture_output=True, text=True)
    assert run.stdout == "42\n"


def test_vendored_crates_are_reused_while_they_match_and_vendored_again_when_not(
        workspace: tuple[Path, Path], tmp_path: Path) -> None:
    ws, _ = workspace
    root = tmp_path / "root"
    dest = cargo_vendor.ensure(root, "demo", "c" * 40, ws, Runner())
    replay = tmp_path / "replay.sh"
    cargo_vendor.ensure(root, "demo", "c" * 40, ws, Runner(replay=replay))
    assert "cargo vendor" not in (replay.read_text() if replay.exists() else "")

    vendored = next((dest / "vendor" / "leaf-0.3.1" / "src").glob("lib.rs"))
    vendored.write_text("pub fn answer() -> u32 { 7 }\n")
    lock = (ws / "Cargo.lock").read_bytes()
    assert not cargo_vendor.verified(dest, hashlib.sha256(lock).hexdigest())
    cargo_vendor.ensure(root, "demo", "c" * 40, ws, Runner())
    assert "42" in vendored.read_text()


def test_a_missing_or_stale_cargo_lock_is_refused_naming_the_pin(workspace: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    ws, _ = workspace
    with (ws / "Cargo.toml").open("a") as fh:  # a dependency the lock does not name: --locked must refuse
        fh.write('other = { path = "other" }\n')
    (ws / "other" / "src").mkdir(parents=True)
    (ws / "other" / "Cargo.toml").write_text('[package]\nname = "other"\nversion = "0.1.0"\nedition = "2021"\n')
    (ws / "other" / "src" / "lib.rs").write_text("")
    with pytest.raises(CargoVendorError, match=r"demo at cccccccccccc: cargo vendor --locked failed: .*lock"):
        cargo_vendor.ensure(tmp_path / "root", "demo", "c" * 40, ws, Runner())
    (ws / "Cargo.lock").unlink()
    with pytest.raises(CargoVendorError, match=r"demo at cccccccccccc: .*Cargo.lock is missing"):
        cargo_vendor.ensure(tmp_path / "root", "demo", "c" * 40, ws, Runner())
    assert not (tmp_path / "root" / "build" / "crates" / f"demo-{'c' * 40}").exists()


@pytest.mark.parametrize(("asked", "provided", "ok"), [
    ("1.85", "1.85", True), ("1.85", "1.97", True), ("1.85.1", "1.85", False), ("1.90", "1.85", False),
    ("nightly-2026-03-10", "1.97", False), ("nightly-2026-03-10", "nightly-2026-03-10", True),
    ("1.85", None, False),
])
def test_the_base_toolchain_must_be_the_release_asked_or_newer(asked: str, provided: str | None, ok: bool) -> None:
    assert (rust_toolchain.problem(asked, provided) is None) == ok


def test_channel_is_read_from_either_toolchain_file(tmp_path: Path) -> None:
    assert rust_toolchain.channel(tmp_path) is None
    (tmp_path / "rust-toolchain").write_text("1.80.0\n")
    assert rust_toolchain.channel(tmp_path) == ("1.80.0", "rust-toolchain")
    (tmp_path / "rust-toolchain.toml").write_text('[toolchain]\nchannel = "nightly-2026-03-10"\n')
    assert rust_toolchain.channel(tmp_path) == ("nightly-2026-03-10", "rust-toolchain.toml")
    assert rust_toolchain.channel(STAND_IN) == ("1.85", "rust-toolchain.toml")


def offline_rendering(tmp_path: Path, rustc_version: str | None) -> tuple[object, list[object], Path]:
    """The offline example with sid's rustc_version replaced, and the stand-in's tree where the fetch puts it."""
    text = (ROOT / "examples" / "offline" / "matrix.yaml").read_text()
    text = text.replace('rustc_version: "1.97"', "" if rustc_version is None else f'rustc_version: "{rustc_version}"')
    path = ROOT / "examples" / "offline" / f".test-rust-{os.getpid()}.yaml"
    path.write_text(text)
    try:
        r = render_matrix(load_matrix(path), ROOT)
    finally:
        path.unlink()
    cells = [rc for rc in r.cells if rc.cell.name == "gfx950-cx7-sid"]
    commit = cells[0].plan.pins["vllm"].commit
    tree = tmp_path / source_dir("vllm", commit)
    shutil.copytree(STAND_IN, tree)
    return r, cells, tree


def scope(r: object, cells: list[object], root: Path) -> Scope:
    return Scope(r, cells, root, Runner(), {}, Trees().by_component(root, cells))  # type: ignore[arg-type]


@pytest.mark.parametrize("rustc_version", ["1.80", None])
def test_preflight_refuses_a_base_toolchain_older_than_the_pin_asks(rustc_version: str | None,
                                                                    tmp_path: Path) -> None:
    r, cells, tree = offline_rendering(tmp_path, rustc_version)
    commit = tree.name.removeprefix("vllm-")
    with pytest.raises(PreflightError) as err:
        prebake_checks.rust_toolchains(scope(r, cells, tmp_path))
    message = str(err.value)
    assert f"vllm at {commit[:12]}: rust-toolchain.toml: it asks for Rust 1.85" in message
    assert "bases.sid.rustc_version" in message and "components.vllm.rust_frontend" in message


def test_preflight_accepts_the_base_toolchain_the_pin_asks_for(tmp_path: Path) -> None:
    r, cells, _ = offline_rendering(tmp_path, "1.85")
    prebake_checks.rust_toolchains(scope(r, cells, tmp_path))


def stand_in_without(module: str, tmp_path: Path) -> str:
    """The last line of what the stand-in's setup.py prints when `module` is not installed (the others are)."""
    script = ("import runpy, sys, types\n"
              "sys.modules['torch'] = types.ModuleType('torch')  # the base's torch\n"
              f"sys.modules[{module!r}] = None  # as if not installed\n"
              "sys.argv = ['setup.py', '--version']\n"
              f"runpy.run_path({str(STAND_IN / 'setup.py')!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "VLLM_TARGET_DEVICE": "rocm"})
    assert proc.returncode != 0
    return proc.stderr.strip().splitlines()[-1]


def test_stand_in_setup_py_fails_without_setuptools_rust(tmp_path: Path) -> None:
    # The real setup.py imports setuptools_rust.build at module scope, unguarded: ModuleNotFoundError before
    # anything else, whether or not any Rust is to be built.
    last = stand_in_without("setuptools_rust", tmp_path)
    assert last.startswith("ModuleNotFoundError") and "setuptools_rust" in last


def test_stand_in_setup_py_fails_without_torch(tmp_path: Path) -> None:
    # The real setup.py imports torch at module scope (its first imports), so a base without PyTorch cannot build.
    last = stand_in_without("torch", tmp_path)
    assert last.startswith("ModuleNotFoundError") and "torch" in last
