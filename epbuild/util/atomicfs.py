"""Writing files and folders so that a reader, or a run killed halfway, sees the old content or the new, never a
part of either: everything is written under a temporary name beside its place, then renamed into it, and a whole
folder is swapped with its replacement in one step (renameat2 RENAME_EXCHANGE), so the place never goes missing.

Modes are set explicitly (0644 files, 0755 folders): mkstemp's 0600 and mkdtemp's 0700 would otherwise reach
committed files and the build contexts BuildKit copies.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644
DIR_MODE = 0o755

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def write_text(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Replaces `path` with `text` in one rename (mode 0644 unless given)."""
    write_bytes(path, text.encode("utf-8"), mode)


def write_bytes(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replaces `path` with `data` in one rename (mode 0644 unless given): a reader sees the old file or the whole
    new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder `<parent>/<prefix>XXXXXXXX` with mode 0755."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(DIR_MODE)
    return path


def replace_dir(new: Path, dest: Path) -> None:
    """Puts folder `new` at `dest`. An existing `dest` is swapped with `new` in one step and its old content is
    deleted from `new`'s name afterwards, so `dest` is always either the old folder or the new one."""
    if not dest.exists():
        new.rename(dest)
        return
    if _exchange(new, dest):
        shutil.rmtree(new)
        return
    # A file system without RENAME_EXCHANGE (NFS, some FUSE): two renames, with a moment without `dest`.
    old = new.with_name(new.name + ".old")
    dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths atomically; False where the kernel or file system cannot."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@contextmanager
def filled_dir(dest: Path, prefix: str) -> Iterator[Path]:
    """A new folder beside `dest` (`<prefix>XXXXXXXX`, 0755) for the caller to fill; when the block ends normally it
    replaces `dest` (replace_dir), when it raises it is deleted, so `dest` is never a half-filled folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(dest.parent, prefix)
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_leftovers(parent: Path, prefix: str) -> list[Path]:
    """Deletes what killed runs left under `parent` named `<prefix>...`. Call it only while holding the lock every
    writer of those names holds, so nothing deleted belongs to a live run."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for path in sorted(parent.iterdir()):
        if not path.name.startswith(prefix):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


@contextmanager
def locked_dir(path: Path) -> Iterator[None]:
    """Holds an exclusive flock on folder `path` itself (no lock file is left behind)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
