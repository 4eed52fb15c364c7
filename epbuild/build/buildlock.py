"""Builds and `invoke gc` from one checkout, kept apart: every build holds build/.builds.lock shared for its whole
run, and gc holds it exclusively while it deletes, so gc never removes an input, export or layout a running
build reads or writes (also those of another matrix's build, which gc cannot know). Builds run beside each
other as before; a build that starts while gc deletes waits for it (a second or so)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)

LOCK_FILE = "build/.builds.lock"


def _open(root: Path) -> int:
    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def build_running(root: Path) -> Iterator[None]:
    """Held by a build from its start to its end (shared: other builds run alongside)."""
    fd = _open(root)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("`invoke gc` is deleting from %s/build; waiting for it", root)
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def no_build_running(root: Path) -> Iterator[None]:
    """Held by gc while it deletes; fails at once, deleting nothing, while a build from this checkout runs."""
    fd = _open(root)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EpbuildError(f"a build from this checkout is running ({root / LOCK_FILE} is held); nothing was "
                               "deleted: run `invoke gc --yes` again when it has finished") from None
        yield
    finally:
        os.close(fd)


def build_is_running(root: Path) -> bool:
    """Whether a build from this checkout holds the lock now (for a report; gc --yes takes the lock itself)."""
    if not (root / LOCK_FILE).exists():
        return False
    fd = _open(root)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
