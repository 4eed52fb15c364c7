"""One content store for the cells' kept OCI layouts: every blob lives once, in build/oci-store/blobs/<alg>/<hex>,
and each cell's layout (build/oci/<cell>/, which BuildKit exports into) names it by a hard link to that file.

BuildKit writes into a layout only the blobs it lacks there, so a layout whose blobs are links is exported into as
before, and `docker load` and the registry push read it as before. The base image's layers, which every cell on
one base shares, take their bytes once instead of once per cell. Before an export the layout is seeded with links
to every stored blob it lacks, so even a cell's first export writes only the blobs no kept layout has; the prune
after it unlinks what its image does not name.

No lock is needed between builds of different cells: each step only adds a name for bytes that are already right.
A layout's blob is replaced, by a rename, with a link to the store's file of the same digest; a blob the store
lacks is linked into it. Either way every name keeps the content its digest says, whatever another build does at
the same time, and a race costs at most one blob not shared until the next build of the cell. A store file that no
layout links any more (link count 1) is named by no manifest and can go: removing it never takes bytes from a
layout, which holds its own link.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

STORE_DIR = "build/oci-store"
"""The store, relative to the folder builds run from, beside build/oci/ (hard links need one file system)."""


def store_path(root: Path) -> Path:
    return root / STORE_DIR


def blob_files(folder: Path) -> list[Path]:
    """The blob files under `folder`/blobs/<algorithm>/, skipping BuildKit's or our own temporary names."""
    blobs = folder / "blobs"
    if not blobs.is_dir():
        return []
    return sorted(p for p in blobs.glob("*/*") if not p.name.startswith(".") and p.is_file())


def share(store: Path, layout: Path) -> int:
    """Makes every blob of `layout` a link to the store's file of the same digest (adding to the store what it
    lacks); returns the bytes this freed (blobs whose own copy was replaced by a link)."""
    freed = 0
    for blob in blob_files(layout):
        algorithm, name = blob.parent.name, blob.name
        stored = store / "blobs" / algorithm / name
        stored.parent.mkdir(parents=True, exist_ok=True)
        freed += _link_one(blob, stored)
    return freed


def _link_one(blob: Path, stored: Path) -> int:
    for _ in range(5):
        try:
            if os.path.samefile(blob, stored):
                return 0
        except FileNotFoundError:
            pass
        try:
            os.link(blob, stored)  # the store lacks it: this layout's copy becomes the store's
            return 0
        except FileExistsError:
            pass
        tmp = blob.with_name(f".{blob.name}.link-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(stored, tmp)
        except FileNotFoundError:
            continue  # removed as unused between the two calls: link ours in instead, next time round
        size = blob.stat().st_size if blob.stat().st_nlink == 1 else 0
        os.replace(tmp, blob)  # the layout's name now means the store's bytes (the same, by their digest)
        return size
    log.warning("could not share %s with the store (it kept changing); it keeps its own copy", blob)
    return 0


def seed(store: Path, layout: Path) -> int:
    """Before an export: links every store blob the layout lacks into it, so BuildKit, which writes only the blobs
    a layout lacks, writes just the new ones (a cell's first export would otherwise copy the base image's layers
    again, while the build runs). The prune after the export unlinks those its image does not name. Returns how
    many were linked."""
    linked = 0
    for stored in blob_files(store):
        blob = layout / "blobs" / stored.parent.name / stored.name
        if blob.exists():
            continue
        blob.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(stored, blob)
            linked += 1
        except FileNotFoundError:
            pass  # swept meanwhile: nothing linked it
        except FileExistsError:
            pass
    return linked


def orphans(store: Path) -> list[Path]:
    """The store's files no layout links any more."""
    return [p for p in blob_files(store) if _links(p) == 1]


def _links(path: Path) -> int:
    try:
        return path.stat().st_nlink
    except FileNotFoundError:
        return 0  # another build's sweep took it since the listing


def sweep(store: Path) -> int:
    """Removes the store's files no layout links; returns the bytes freed."""
    freed = 0
    for path in orphans(store):
        try:
            stat = path.stat()
            if stat.st_nlink == 1:
                path.unlink()
                freed += stat.st_blocks * 512
        except FileNotFoundError:
            pass  # another build's sweep took it
    return freed
