"""The kept layouts' content store (epbuild/build/blobstore.py): a blob several layouts hold is on disk once, every name
keeps the bytes its digest says while two builds of different cells (and a sweep, as `invoke gc` runs) work on the
store at the same time, and a blob is removed from the store only once no layout links it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from epbuild.build import blobstore

WRITER = r"""
import hashlib, os, random, sys
from pathlib import Path
from epbuild.build import blobstore

store, layout, cell, rounds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def content(seed):
    return hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB

def export(seed):
    # As BuildKit's content store writes a blob the layout lacks: a temporary name, then a rename.
    data = content(seed)
    path = layout / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()
    if not path.exists():
        tmp = path.with_name(".ingest-" + path.name)
        tmp.write_bytes(data)
        tmp.replace(path)
    return path

(layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
previous = None
for i in range(rounds):
    for n in range(12):
        export(f"base-{n}")                   # the base image's layers: every cell's
    for n in range(3):
        export(f"{cell}-own-{n}")             # this cell's own layers
    fresh = export(f"{cell}-export-{i}")      # this export's manifest and config
    if previous is not None and previous != fresh:
        previous.unlink()                     # the prune of the earlier export's blob
    previous = fresh
    blobstore.share(store, layout)
    blobstore.sweep(store)
print("done", flush=True)
"""

SWEEPER = r"""
import sys, time
from pathlib import Path
from epbuild.build import blobstore
store, seconds = Path(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + seconds
while time.monotonic() < end:
    blobstore.sweep(store)
"""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def every_blob(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "blobs" / "sha256").iterdir()) if (folder / "blobs").is_dir() else []


def test_two_concurrent_writers_and_a_sweeper_leave_a_consistent_store(tmp_path: Path) -> None:
    store = tmp_path / "build" / "oci-store"
    layouts = {cell: tmp_path / "build" / "oci" / cell for cell in ("cell-a", "cell-b")}
    sweeper = subprocess.Popen([sys.executable, "-c", SWEEPER, str(store), "4"])
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(layout), cell, "60"],
                                stdout=subprocess.PIPE, text=True) for cell, layout in layouts.items()]
    outputs = [w.communicate(timeout=300)[0] for w in writers]
    sweeper.wait(timeout=60)
    assert [w.returncode for w in writers] == [0, 0] and outputs == ["done\n", "done\n"]

    # Every name, in the layouts and in the store, holds the bytes its digest names; no temporary name is left.
    for folder in (store, *layouts.values()):
        for path in every_blob(folder):
            assert not path.name.startswith("."), path
            assert sha256_of(path) == path.name, path
    # Each layout holds exactly what its last export left: 12 shared, 3 own, 1 of the last export.
    for layout in layouts.values():
        assert len(every_blob(layout)) == 16
    # The next build of each cell shares whatever a race left unshared; then every blob is on disk once.
    for layout in layouts.values():
        blobstore.share(store, layout)
    blobstore.sweep(store)
    names = {p.name for layout in layouts.values() for p in every_blob(layout)}
    assert {p.name for p in every_blob(store)} == names
    inodes = {(p.stat().st_dev, p.stat().st_ino) for folder in (store, *layouts.values()) for p in every_blob(folder)}
    assert len(inodes) == len(names) == 12 + 2 * 3 + 2


def write_blob(layout: Path, data: bytes) -> Path:
    path = layout / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def du_bytes(folder: Path) -> int:
    """What `du` counts for the folder, in bytes (each inode once, hard links included)."""
    return int(subprocess.run(["du", "-s", "--block-size=1", str(folder)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def test_a_shared_blob_is_stored_once_and_kept_while_one_layout_names_it(tmp_path: Path) -> None:
    store, a, b = tmp_path / "oci-store", tmp_path / "oci" / "a", tmp_path / "oci" / "b"
    base = os.urandom(1 << 20)
    blob_a, blob_b = write_blob(a, base), write_blob(b, base)
    own = write_blob(b, os.urandom(4096))
    before = du_bytes(tmp_path)
    freed = blobstore.share(store, a) + blobstore.share(store, b)
    assert freed == len(base)  # b's copy of the shared blob became a link
    assert os.path.samefile(blob_a, blob_b) and os.path.samefile(blob_b, store / "blobs" / "sha256" / blob_a.name)
    assert before >= 2 * len(base) and du_bytes(tmp_path) <= len(base) + 65536  # one copy, the folders, `own`
    blob_a.unlink()  # cell a pruned it: b still names it
    assert blobstore.sweep(store) == 0 and blob_b.read_bytes() == base
    blob_b.unlink()
    own.unlink()
    assert blobstore.sweep(store) >= len(base) + 4096
    assert every_blob(store) == []


def test_sharing_again_changes_nothing(tmp_path: Path) -> None:
    """A no-op rebuild: the layout's blobs keep their inodes (BuildKit wrote none, there is nothing to link)."""
    store, layout = tmp_path / "oci-store", tmp_path / "oci" / "a"
    write_blob(layout, b"x" * 10000)
    blobstore.share(store, layout)
    inodes = [p.stat().st_ino for p in every_blob(layout)]
    assert blobstore.share(store, layout) == 0
    assert [p.stat().st_ino for p in every_blob(layout)] == inodes


def test_seeding_links_the_stored_blobs_a_new_layout_lacks(tmp_path: Path) -> None:
    """A cell's first export finds the blobs other cells keep (the base image's layers) already in its layout, as
    links, so BuildKit writes only its new ones; nothing is copied."""
    store, a, b = tmp_path / "oci-store", tmp_path / "oci" / "a", tmp_path / "oci" / "b"
    base = write_blob(a, os.urandom(200_000))
    blobstore.share(store, a)
    assert blobstore.seed(store, b) == 1
    seeded = b / "blobs" / "sha256" / base.name
    assert os.path.samefile(seeded, base) and seeded.read_bytes() == base.read_bytes()
    assert blobstore.seed(store, b) == 0  # present already
    seeded.unlink()  # b's prune: its image does not name it
    assert blobstore.sweep(store) == 0 and base.exists()  # a still names it
