"""The disk benchmark's measure (bench/disk.py) and the benchmarks' scratch folder (bench/scratch.py): on disk
counts each inode once, as `du` does; distinct counts each content once; scratch goes under XDG_CACHE_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.disk import measure, per_layout_copies  # noqa: E402
from bench.scratch import cache_root, scratch  # noqa: E402


def du_file_bytes(folder: Path) -> int:
    """`du`'s count minus the folders' own blocks: the bytes of the files, each inode once."""
    total = int(subprocess.run(["du", "-s", "--block-size=1", str(folder)], capture_output=True, text=True,
                               check=True).stdout.split()[0])
    folders = sum(Path(p).lstat().st_blocks * 512 for p, _, _ in os.walk(folder))
    return total - folders


def test_on_disk_counts_links_once_and_distinct_counts_copies_once(tmp_path: Path) -> None:
    build = tmp_path / "build"
    big, other = os.urandom(400_000), os.urandom(100_000)
    (build / "oci" / "a" / "blobs" / "sha256").mkdir(parents=True)
    (build / "oci" / "b" / "blobs" / "sha256").mkdir(parents=True)
    (build / "sources").mkdir()
    (build / "oci" / "a" / "blobs" / "sha256" / "x").write_bytes(big)
    os.link(build / "oci" / "a" / "blobs" / "sha256" / "x", build / "oci" / "b" / "blobs" / "sha256" / "x")
    (build / "sources" / "copy").write_bytes(big)       # the same bytes again, as a second inode
    (build / "sources" / "other").write_bytes(other)
    (build / "sources" / "same-size").write_bytes(os.urandom(100_000))  # same size, other content

    usage = measure(build)
    assert usage.on_disk == du_file_bytes(build)
    blocks = {len(big): (build / "sources" / "copy").stat().st_blocks * 512,
              len(other): (build / "sources" / "other").stat().st_blocks * 512}
    assert usage.distinct == blocks[len(big)] + 2 * blocks[len(other)]
    assert usage.on_disk == usage.distinct + blocks[len(big)]  # the one real duplicate
    assert usage.by_folder["oci+oci-store"] == (blocks[len(big)], blocks[len(big)])
    assert per_layout_copies(build) == 2 * len(big)


def test_scratch_goes_under_the_cache_home_and_is_removed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with scratch("t-") as folder:
        (folder / "data").write_text("x")
        assert folder.parent == tmp_path / "cache" / "epbuild" / "bench"
    assert not folder.exists()
    assert cache_root({"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}) == Path("/home/u/.cache/epbuild")
    assert cache_root({"HOME": "/home/u"}) == Path("/home/u/.cache/epbuild")
