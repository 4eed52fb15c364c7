"""The wheelhouse: requirement files read as pip reads them (minus index options), resolved with the real pip
against what the base carries into a hash-pinned lock, and reused with no network once resolved."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from epbuild.inputs.base_python import BasePython, Distribution
from epbuild.inputs.wheelhouse import PythonTarget, Requirement, WheelhouseError, ensure, requirements
from epbuild.util.commands import Runner

TARGET = PythonTarget("3.13", (2, 41), "x86_64")
EMPTY_BASE = BasePython("base", TARGET, ())
SID_BASE = BasePython("base", PythonTarget("3.14", (2, 43), "x86_64"), ())


def lines(*texts: str) -> list[Requirement]:
    return [Requirement(text, "requirements.txt") for text in texts]


@pytest.fixture(autouse=True)
def no_host_pip_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's own pip configuration (a constraints file, an index) is not part of what is tested here."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel, as any build backend would write it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                    + "".join(f"Requires-Dist: {r}\n" for r in requires))
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_requirements_follow_includes_and_drop_index_options(tmp_path: Path) -> None:
    (tmp_path / "requirements" / "build").mkdir(parents=True)
    (tmp_path / "requirements" / "common.txt").write_text("packaging>=24.2  # comment\n")
    (tmp_path / "requirements" / "build" / "rocm.txt").write_text(
        "-r ../common.txt\n--extra-index-url https://download.pytorch.org/whl/rocm7.1\ntorch==2.11.0\n"
        "Triton==3.6.0\nsetuptools-scm>=8\n\n# c\n")
    assert requirements(tmp_path, ("requirements/build/rocm.txt",), "vllm") == [
        Requirement("packaging>=24.2", "requirements/common.txt"),
        Requirement("torch==2.11.0", "requirements/build/rocm.txt"),
        Requirement("Triton==3.6.0", "requirements/build/rocm.txt"),
        Requirement("setuptools-scm>=8", "requirements/build/rocm.txt")]


def test_pyproject_toml_as_the_requirements_gives_no_lines_of_its_own(tmp_path: Path) -> None:
    # NIXL names pyproject.toml: what it needs comes from [build-system] requires (build_requires), not from lines
    # of the TOML read as a requirements file (which would be "[build-system]", "requires = [...]").
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["meson-python"]\n')
    assert requirements(tmp_path, ("pyproject.toml",), "nixl") == []
    with pytest.raises(WheelhouseError, match="pyproject.toml does not exist"):
        requirements(tmp_path / "nowhere", ("pyproject.toml",), "nixl at abc")


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
    dest = ensure(root, "mori-sid", "mori at aaaaaaaaaaaa", lines("demo>=1"), EMPTY_BASE, Runner())
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert (dest / "requirements.lock").read_text() == f"demo==1.2.3 --hash=sha256:{sha}\n"
    assert (dest / wheel.name).read_bytes() == wheel.read_bytes()

    for path in index.iterdir():  # the "network" is gone: the wheelhouse must be reused as it is
        path.unlink()
    replay = tmp_path / "replay.sh"
    again = ensure(root, "mori-sid", "mori at aaaaaaaaaaaa", lines("demo>=1"), EMPTY_BASE, Runner(replay=replay))
    assert again == dest and "pip download" not in replay.read_text()


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    """What a stage's named context holds: every file of the folder, by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_folder_a_stage_reads_is_the_same_however_find_links_is_spelled(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # bench.fleet at 2825cdd: the example's matrix names its wheels folder by path, its variants by file:// URI, and
    # each spelling rewrote the wheelhouse with a stamp of its own; BuildKit saw a new `wheels-<name>` context and
    # ran AITER's, MoRI's and NIXL's stages again after a vLLM move.
    index = tmp_path / "index"
    make_wheel(index, "demo", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    found = []
    for spelling in (str(index), index.as_uri(), f"{tmp_path}/./index"):
        dest = ensure(tmp_path / "root", "aiter-sid", "aiter at cccccccccccc", lines("demo"), EMPTY_BASE, Runner(),
                      find_links=[spelling])
        found.append(_folder_bytes(dest))
    assert found[0] == found[1] == found[2]
    assert set(found[0]) == {"demo-1.0-py3-none-any.whl", "requirements.lock", "requirements.in", "resolved.txt"}


@pytest.mark.parametrize("damage", ["edited", "truncated", "lock edited"])
def test_a_damaged_cached_wheel_or_lock_is_noticed_and_downloaded_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    index = tmp_path / "index"
    wheel = make_wheel(index, "demo", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    dest = ensure(tmp_path / "root", "aiter-sid", "aiter at bbbbbbbbbbbb", lines("demo"), EMPTY_BASE, Runner())
    lock = (dest / "requirements.lock").read_text()
    if damage == "edited":
        (dest / wheel.name).write_bytes(b"not the wheel")
    elif damage == "truncated":
        (dest / wheel.name).write_bytes(wheel.read_bytes()[:100])
    else:
        (dest / "requirements.lock").write_text(lock.replace("demo==1.0 --hash", "demo>=0 --hash"))
    replay = tmp_path / "replay.sh"
    with caplog.at_level("WARNING"):
        ensure(tmp_path / "root", "aiter-sid", "aiter at bbbbbbbbbbbb", lines("demo"), EMPTY_BASE, Runner(replay=replay))
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
    with pytest.raises(WheelhouseError, match=r"vllm at cccccccccccc: cannot resolve .* \(Python 3\.13\): .*no-such-dist"):
        ensure(tmp_path / "root", "vllm-sid", "vllm at cccccccccccc", lines("no-such-dist-anywhere"), EMPTY_BASE, Runner())
    assert not (tmp_path / "root" / "vllm-sid").exists()


def test_cells_on_two_bases_never_rewrite_each_others_wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build of a trixie cell (Python 3.13) between two builds of a sid cell (Python 3.14) must leave the sid
    cell's wheelhouse untouched: a rewritten folder is a changed `wheels-<component>` context, whose install step
    BuildKit then runs again."""
    index = tmp_path / "index"
    make_wheel(index, "demo", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    root = tmp_path / "root"
    sid = ensure(root, "mori-sid", "mori at dddddddddddd", lines("demo"), SID_BASE, Runner())
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sid.iterdir()}
    trixie = ensure(root, "mori-trixie", "mori at dddddddddddd", lines("demo"), EMPTY_BASE, Runner())
    assert trixie != sid
    replay = tmp_path / "replay.sh"
    again = ensure(root, "mori-sid", "mori at dddddddddddd", lines("demo"), SID_BASE,
                   Runner(replay=replay))
    assert again == sid and "pip download" not in replay.read_text()
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sid.iterdir()} == before


def _base_with(*dists: tuple[str, str, tuple[str, ...]]) -> BasePython:
    return BasePython("epbuild-test/base", TARGET, tuple(
        Distribution(name, version, f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                     + "".join(f"Requires-Dist: {r}\n" for r in requires)) for name, version, requires in dists))


ROCM_TORCH = ("torch", "2.10.0+rocm7.2.1", ())


def test_a_requirement_the_base_satisfies_transitively_keeps_the_base_s_torch(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """timm needs torch; the index's torch is newer (a CUDA build), the base's is a +rocm build no index has: the
    base's satisfies timm, so nothing of torch is downloaded (what the reference's in-image `uv pip install` does)."""
    index = tmp_path / "index"
    timm = make_wheel(index, "timm", "1.0.17", ("torch>=2.4",))
    make_wheel(index, "torch", "2.15.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    dest = ensure(tmp_path / "root", "vllm-sid", "vllm at eeeeeeeeeeee", lines("timm>=1.0.17", "torch"),
                  _base_with(ROCM_TORCH), Runner(), find_links=[str(index)])
    assert sorted(p.name for p in dest.glob("*.whl")) == [timm.name]
    assert (dest / "requirements.lock").read_text().startswith("timm==1.0.17 --hash=sha256:")


def test_a_requirement_only_a_replaced_base_torch_meets_fails_naming_its_chain(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    index = tmp_path / "index"
    make_wheel(index, "timm", "2.0", ("helper", "torch>=2.11"))
    make_wheel(index, "helper", "1.0")
    make_wheel(index, "torch", "2.15.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(WheelhouseError) as raised:
        ensure(tmp_path / "root", "vllm-sid", "vllm at eeeeeeeeeeee",
               [Requirement("timm", "requirements/common.txt")], _base_with(ROCM_TORCH), Runner(),
               find_links=[str(index)])
    message = str(raised.value)
    assert "requirements/common.txt: timm -> torch (timm 2.0 requires torch>=2.11)" in message
    assert "would replace the base's torch 2.10.0+rocm7.2.1 with 2.15.0" in message
    assert "epbuild-test/base" in message
    assert not (tmp_path / "root" / "vllm-sid").exists()


def test_what_the_base_s_own_packages_need_is_never_replaced_either(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The base's triton pins its torch; a requirement asking for another triton would replace a base
    distribution too, even though nothing here names torch."""
    index = tmp_path / "index"
    make_wheel(index, "triton", "3.6.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    base = _base_with(ROCM_TORCH, ("triton", "3.5.0+rocm", ("torch==2.10.0+rocm7.2.1",)))
    with pytest.raises(WheelhouseError, match=r"requirements.txt: triton \(asks for triton==3.6.0\): would replace "
                                              r"the base's triton 3.5.0\+rocm with 3.6.0"):
        ensure(tmp_path / "root", "x-sid", "x at ffffffffffff", lines("triton==3.6.0"), base, Runner(),
               find_links=[str(index)])


def test_an_older_release_that_keeps_the_base_s_distribution_is_chosen_over_replacing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """setuptools-scm's newest release needs a newer packaging than Debian trixie's base carries (vcs-versioning
    2.6.0: packaging>=26.2, against the base's 25.0): the resolver takes the release that works with the base's,
    as an install into the image would have to."""
    index = tmp_path / "index"
    make_wheel(index, "scmtool", "2.0", ("packaging>=26.2",))
    old = make_wheel(index, "scmtool", "1.0", ("packaging>=20",))
    make_wheel(index, "packaging", "26.4")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    dest = ensure(tmp_path / "root", "aiter-trixie", "aiter at eeeeeeeeeeee", lines("scmtool"),
                  _base_with(("packaging", "25.0", ())), Runner(), find_links=[str(index)])
    assert sorted(p.name for p in dest.glob("*.whl")) == [old.name]
