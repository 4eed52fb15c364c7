"""Where benchmarks keep their large scratch data (fresh engines' data roots, registries, matrix variants): a
cache folder outside the working tree, so that a `cp -r build`, an editor's indexer or `invoke gc` never walks
into many GB of another engine's layers. `$XDG_CACHE_HOME/epbuild/bench/` (default ~/.cache); each benchmark's
folder is removed when it ends, whether it succeeded or not."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    """epbuild's cache folder: $XDG_CACHE_HOME/epbuild, or ~/.cache/epbuild (the XDG base directory default)."""
    base = environ.get("XDG_CACHE_HOME") or ""
    # The XDG spec: a relative value is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path(environ.get("HOME") or Path.home()) / ".cache"
    return root / "epbuild"


def new_scratch(prefix: str) -> Path:
    """A new empty folder `<cache>/bench/<prefix>XXXXXXXX` for one benchmark run (the caller removes it)."""
    parent = cache_root() / "bench"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A benchmark's scratch folder outside the checkout, removed when the block ends."""
    folder = new_scratch(prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
