"""Disk: bytes on disk under build/ against distinct bytes, after building cells of the offline example.

Builds the cells (all 9 by default; `--cell` or `--base` for fewer, `--no-build` to measure build/ as it is), then
walks build/ once and prints:
- on disk: every inode once (st_blocks, what `du` counts; hard links, as the layouts' blobs into the content
  store, count once);
- distinct: every distinct file content once (files grouped by size, then by sha256), in the same unit;
- ratio on disk / distinct: target at most 1.1 (1.0: nothing is stored twice);
- per folder of build/ the same two figures, and the layouts' blobs counted once per layout that names them
  (what build/oci/ took when each cell kept its own copy of every blob).
Figures last, as JSON; recorded in docs/benchmarks.md with the commit measured.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import OFFLINE, ROOT, build_summary, invoke, record

TARGET = 1.1
LAYOUTS = "oci+oci-store"


@dataclass
class Usage:
    on_disk: int = 0
    distinct: int = 0
    files: int = 0
    by_folder: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per top-level folder of build/: (on disk, distinct within that folder)."""

    @property
    def ratio(self) -> float:
        return self.on_disk / self.distinct if self.distinct else 1.0


def _regular_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for parent, _, names in os.walk(folder):
        for name in names:
            path = Path(parent, name)
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue  # a temporary file a running export renamed or removed meanwhile
            if stat.S_ISREG(st.st_mode):
                yield path, st


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _measure_files(files: list[tuple[Path, os.stat_result]]) -> tuple[int, int]:
    """(on disk, distinct) of these regular files: each inode once; each content once."""
    inodes: dict[tuple[int, int], os.stat_result] = {}
    for _, st in files:
        inodes[(st.st_dev, st.st_ino)] = st
    on_disk = sum(st.st_blocks * 512 for st in inodes.values())
    by_size: dict[int, list[tuple[Path, os.stat_result]]] = {}
    for path, st in files:
        by_size.setdefault(st.st_size, []).append((path, st))
    distinct = 0
    for group in by_size.values():
        unique = {(st.st_dev, st.st_ino): (path, st) for path, st in group}
        if len(unique) == 1:
            distinct += next(iter(unique.values()))[1].st_blocks * 512
            continue
        contents: dict[str, int] = {}
        for path, st in unique.values():
            try:
                contents.setdefault(_sha256(path), st.st_blocks * 512)
            except FileNotFoundError:
                continue
        distinct += sum(contents.values())
    return on_disk, distinct


def measure(build: Path) -> Usage:
    """Bytes of regular files under `build` on disk against their distinct content (folders' own blocks left out:
    they hold names, not content)."""
    files = list(_regular_files(build))
    on_disk, distinct = _measure_files(files)
    usage = Usage(on_disk, distinct, len(files))
    folders: dict[str, list[tuple[Path, os.stat_result]]] = {}
    for path, st in files:
        top = path.relative_to(build).parts[0]
        # The layouts and their store are one folder's worth: the same inodes under two names.
        folders.setdefault(LAYOUTS if top in ("oci", "oci-store") else top, []).append((path, st))
    usage.by_folder = {name: _measure_files(group) for name, group in sorted(folders.items())}
    return usage


def per_layout_copies(build: Path) -> int:
    """The layouts' blobs counted once per layout naming them: build/oci/ without a shared store."""
    oci = build / "oci"
    if not oci.is_dir():
        return 0
    return sum(st.st_size for layout in oci.iterdir() if layout.is_dir() and not layout.name.startswith(".")
               for _, st in _regular_files(layout / "blobs"))


def _commit() -> str:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + ("+uncommitted changes" if dirty else "")


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", action="append", default=[], help="build only these cells (repeatable)")
    parser.add_argument("--base", action="append", default=[], help="build only the cells on these bases")
    parser.add_argument("--no-build", action="store_true", help="measure build/ as it is")
    args = parser.parse_args()
    selection = [*(f"--cell={c}" for c in args.cell), *(f"--base={b}" for b in args.base)] or ["--all"]
    listed = invoke("matrix", "--matrix", OFFLINE, "--json").stdout
    import json

    every = [c["cell"] for c in json.loads(listed)["cells"]]
    built: list[str] = []
    if not args.no_build:
        invoke("sources", "--matrix", OFFLINE, *selection)
        summary = build_summary("--matrix", OFFLINE, *selection)
        built = [c["cell"] for c in summary["cells"] if c["ok"]]  # type: ignore[index, union-attr]
    layouts = sorted(p.name for p in (ROOT / "build" / "oci").iterdir()
                     if p.is_dir()) if (ROOT / "build" / "oci").is_dir() else []
    usage = measure(ROOT / "build")
    copies = per_layout_copies(ROOT / "build")
    oci_disk = usage.by_folder.get(LAYOUTS, (0, 0))[0]
    met = usage.ratio <= TARGET
    scope = ("every cell" if set(every) <= set(layouts) else
             f"{len([c for c in every if c in layouts])} of the example's {len(every)} cells "
             f"({', '.join(c for c in every if c in layouts)}); not measured: "
             f"{', '.join(c for c in every if c not in layouts)}")
    lines = [
        f"After building {scope} (measured at {_commit()}): {_mb(usage.on_disk)} on disk under build/ for "
        f"{_mb(usage.distinct)} of distinct content ({usage.files} files): ratio {usage.ratio:.3f} "
        f"(target at most {TARGET}: {'met' if met else 'MISSED'}).",
        f"The kept layouts (build/oci/ and its content store build/oci-store/) take {_mb(oci_disk)}; with each "
        f"layout holding its own copy of every blob they would take {_mb(copies)}.",
        "Per folder (on disk / distinct within it): " + "; ".join(
            f"{name} {_mb(a)} / {_mb(b)}" for name, (a, b) in usage.by_folder.items()) + ".",
    ]
    record("Disk", lines, {
        "commit": _commit(), "cells": [c for c in every if c in layouts], "built_now": built,
        "on_disk_bytes": usage.on_disk, "distinct_bytes": usage.distinct, "ratio": round(usage.ratio, 4),
        "layouts_on_disk_bytes": oci_disk, "layouts_per_cell_copies_bytes": copies,
        "by_folder": {name: {"on_disk": a, "distinct": b} for name, (a, b) in usage.by_folder.items()},
        "target": TARGET, "met": met,
    })


if __name__ == "__main__":
    main()
