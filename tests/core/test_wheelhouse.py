"""The wheelhouse: requirement files read as pip reads them (minus index options and what the base carries),
resolved with the real pip into a hash-pinned lock, and reused with no network once resolved."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from epbuild.commands import Runner
from epbuild.wheelhouse import PythonTarget, WheelhouseError, ensure, requirements

TARGET = PythonTarget("3.13", (2, 41), "x86_64")


def make_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, as any build backend would write it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_requirements_follow_includes_and_drop_index_options_and_base_packages(tmp_path: Path) -> None:
    (tmp_path / "requirements" / "build").mkdir(parents=True)
    (tmp_path / "requirements" / "common.txt").write_text("packaging>=24.2  # comment\n")
    (tmp_path / "requirements" / "build" / "rocm.txt").write_text(
        "-r ../common.txt\n--extra-index-url https://download.pytorch.org/whl/rocm7.1\ntorch==2.11.0\n"
        "Triton==3.6.0\nsetuptools-scm>=8\n\n# c\n")
    assert requirements(tmp_path, ("requirements/build/rocm.txt",), "vllm") == ["packaging>=24.2", "setuptools-scm>=8"]


def test_a_missing_requirements_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError, match="requirements-build.txt does not exist"):
        requirements(tmp_path, ("requirements-build.txt",), "mori at abc")


def test_resolves_with_pip_into_a_hash_pinned_lock_and_reuses_it_offline(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "index"
    wheel = make_wheel(index, "demo", "1.2.3")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    root = tmp_path / "root"
    dest = ensure(root, "mori", "a" * 40, "sid", ["demo>=1"], TARGET, Runner())
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert (dest / "requirements.lock").read_text() == f"demo==1.2.3 --hash=sha256:{sha}\n"
    assert (dest / wheel.name).read_bytes() == wheel.read_bytes()

    for path in index.iterdir():  # the "network" is gone: the wheelhouse must be reused as it is
        path.unlink()
    replay = tmp_path / "replay.sh"
    again = ensure(root, "mori", "a" * 40, "sid", ["demo>=1"], TARGET, Runner(replay=replay))
    assert again == dest and "pip download" not in replay.read_text()


@pytest.mark.parametrize("damage", ["edited", "truncated", "lock edited"])
def test_a_damaged_cached_wheel_or_lock_is_noticed_and_downloaded_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    index = tmp_path / "index"
    wheel = make_wheel(index, "demo", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    dest = ensure(tmp_path / "root", "aiter", "b" * 40, "sid", ["demo"], TARGET, Runner())
    lock = (dest / "requirements.lock").read_text()
    if damage == "edited":
        (dest / wheel.name).write_bytes(b"not the wheel")
    elif damage == "truncated":
        (dest / wheel.name).write_bytes(wheel.read_bytes()[:100])
    else:
        (dest / "requirements.lock").write_text(lock.replace("demo==1.0 --hash", "demo>=0 --hash"))
    replay = tmp_path / "replay.sh"
    with caplog.at_level("WARNING"):
        ensure(tmp_path / "root", "aiter", "b" * 40, "sid", ["demo"], TARGET, Runner(replay=replay))
    assert "pip download" in replay.read_text()
    assert (dest / wheel.name).read_bytes() == wheel.read_bytes()
    assert (dest / "requirements.lock").read_text() == lock
    [notice] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    what = "requirements.lock" if damage == "lock edited" else wheel.name
    assert notice.startswith(f"aiter at {'b' * 12}: the cached") and what in notice
    assert "downloading the wheelhouse again" in notice


def test_an_unresolvable_requirement_fails_naming_component_and_python(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(WheelhouseError, match=r"vllm at cccccccccccc: cannot download .* for Python 3\.13"):
        ensure(tmp_path / "root", "vllm", "c" * 40, "sid", ["no-such-dist-anywhere"], TARGET, Runner())
    assert not (tmp_path / "root" / "build" / "wheelhouse" / f"vllm-{'c' * 40}-sid").exists()


def test_cells_on_two_bases_never_rewrite_each_others_wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build of a trixie cell (Python 3.13) between two builds of a sid cell (Python 3.14) must leave the sid
    cell's wheelhouse untouched: a rewritten folder is a changed `wheels-<component>` context, whose install step
    BuildKit then runs again."""
    index = tmp_path / "index"
    make_wheel(index, "demo", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    root = tmp_path / "root"
    sid = ensure(root, "mori", "d" * 40, "sid", ["demo"], PythonTarget("3.14", (2, 43), "x86_64"), Runner())
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sid.iterdir()}
    trixie = ensure(root, "mori", "d" * 40, "trixie", ["demo"], TARGET, Runner())
    assert trixie != sid
    replay = tmp_path / "replay.sh"
    again = ensure(root, "mori", "d" * 40, "sid", ["demo"], PythonTarget("3.14", (2, 43), "x86_64"),
                   Runner(replay=replay))
    assert again == sid and "pip download" not in replay.read_text()
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sid.iterdir()} == before
