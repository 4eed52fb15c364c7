"""`invoke gc`: what under build/ nothing current needs, listed and (with --yes) removed.

What is needed is derived from the matrices given (epbuild/build/gc_needed.py). Everything else in the folders those
paths live in that is named after a pin (a commit or a content digest in its name) is garbage: a pin the matrix moved
away from leaves its export, wheelhouse and crates behind. `keep` keeps the newest N such leftovers of each kind (same
name but for the pin), for moving a pin back without fetching again. Nothing else under build/ is touched (logs, the
offline example's repositories, what other tools put there).

Bytes are counted per inode: a blob of a layout is a hard link to the content store (epbuild/build/blobstore.py), and
only an inode whose every link goes is freed. Deleting holds the checkout's build lock (epbuild/build/buildlock.py), so
it never runs while a build does, and each item's own lock (a layout's, an export's, a mirror's) where it has one.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat as stat_module
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from epbuild.build import blobstore, buildlock, reproducible
from epbuild.build.gc_needed import Needed, needed
from epbuild.inputs import cargo_vendor
from epbuild.inputs.git_mirrors import GitMirrors
from epbuild.render.dockerfiles import Rendering
from epbuild.util import paths
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import GIT_HEAD_DIR, SCM_DIR, SOURCES_DIR, VENDOR_DIR, WHEELHOUSE_DIR

BUILD = "build"
PIN_DIRS = (SOURCES_DIR, SCM_DIR, GIT_HEAD_DIR, WHEELHOUSE_DIR, VENDOR_DIR, cargo_vendor.CRATES_DIR,
            paths.ARCHIVES_DIR, paths.DOWNLOADS_DIR)
"""The folders of per-pin data the build writes (each also named by the path table for the pins it needs)."""
PIN = re.compile(r"(?:^|-)([0-9a-f]{7,64})(?=$|[-.])")
"""A commit or content digest in an entry's name: what makes it data of one pin."""


@dataclass
class Item:
    path: Path
    why: str
    lock: Path | None = None
    sidecars: tuple[Path, ...] = ()
    blob: bool = False
    freed: int = 0
    """Bytes this item frees (inodes all of whose links go with the plan), filled in by plan()."""


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(item.freed for item in self.items)


def _under_build(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return len(parts) >= 2 and parts[0] == BUILD and ".." not in parts


def pin_roots(need: Needed) -> list[str]:
    """The folders to look in: the build's per-pin folders and the folder of every path the matrices need."""
    roots = set(PIN_DIRS) | {str(PurePosixPath(p).parent) for p in need.paths}
    return sorted(r for r in roots if _under_build(r))


def _stem(name: str) -> str | None:
    """The entry's unit: its name up to the first dot after the pin (`x-<commit>.export.json` and `x-<commit>.lock`
    go with `x-<commit>`); None for a name without a pin (not ours to judge)."""
    match = PIN.search(name)
    if match is None:
        return None
    dot = name.find(".", match.end())
    return name if dot < 0 else name[:dot]


def _family(stem: str) -> str:
    match = PIN.search(stem)
    assert match is not None
    return stem[:match.start(1)] + "*" + stem[match.end(1):]


def _pin_items(root: Path, need: Needed, keep: int) -> list[Item]:
    needed_parts = {PurePosixPath(p) for p in need.paths}
    ancestors = {parent for p in needed_parts for parent in p.parents}
    roots = pin_roots(need)
    kept = needed_parts | ancestors | {PurePosixPath(r) for r in roots}
    items: list[Item] = []
    for rel in roots:
        folder = root / rel
        if not folder.is_dir():
            continue
        units: dict[str, list[Path]] = {}
        for entry in sorted(folder.iterdir()):
            stem = _stem(entry.name)
            if entry.name.startswith(".") or stem is None:
                continue
            units.setdefault(stem, []).append(entry)
        families: dict[str, list[tuple[float, str]]] = {}
        for stem, entries in units.items():
            if any(PurePosixPath(rel, e.name) in kept for e in entries):
                continue
            newest = max(e.lstat().st_mtime for e in entries)
            families.setdefault(_family(stem), []).append((newest, stem))
        for family, stems in families.items():
            for _, stem in sorted(stems, reverse=True)[keep:]:
                entries = units[stem]
                main = next((e for e in entries if e.name == stem), entries[0])
                lock = folder / f"{stem}.lock"
                items.append(Item(main, f"{rel}: not needed by the matrix ({family})",
                                  lock if lock.exists() else None, tuple(e for e in entries if e != main)))
    return items


def _layout_items(root: Path, need: Needed) -> list[Item]:
    oci = reproducible.oci_layout(root, "x").parent
    if not oci.is_dir():
        return []
    items: list[Item] = []
    for entry in sorted(oci.iterdir()):
        if entry.name.startswith("."):
            cell = entry.name[1:].removesuffix(".lock")
            if entry.name.endswith(".lock") and cell not in need.layouts and not (oci / cell).exists():
                items.append(Item(entry, "lock of a layout that is gone"))
            continue
        if not entry.is_dir():
            continue
        lock = reproducible.layout_lock(root, entry.name)
        sidecars = (lock,) if lock.exists() else ()
        if entry.name not in need.layouts:
            items.append(Item(entry, "layout of a cell the matrices no longer have", lock, sidecars))
            continue
        if not (entry / "index.json").exists():
            items.append(Item(entry, "layout without an image (its build did not finish)", lock))
            continue
        try:
            stale = reproducible.unreferenced_blobs(entry)
        except ValueError:
            items.append(Item(entry, "layout with a torn index (a killed build's)", lock))
            continue
        items += [Item(blob, f"blobs no manifest of {entry.name} names", lock, blob=True) for blob in stale]
    return items


def _mirror_items(root: Path, need: Needed) -> list[Item]:
    if need.mirrors is None:
        return []
    git_dir = GitMirrors(root, Runner()).git_dir
    if not git_dir.is_dir():
        return []
    items = []
    for entry in sorted(git_dir.iterdir()):
        if entry.name.startswith(".") or not entry.name.endswith(".git") or entry.name in need.mirrors:
            continue
        lock = entry.with_name(entry.name + ".lock")
        items.append(Item(entry, "mirror of a repository the matrices no longer name", lock,
                          (lock,) if lock.exists() else ()))
    return items


def _files(path: Path) -> Iterator[os.stat_result]:
    if path.is_symlink() or not path.is_dir():
        if os.path.lexists(path):
            yield path.lstat()
        return
    yield path.lstat()
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            yield Path(folder, name).lstat()


def plan(root: Path, need: Needed, keep: int = 0) -> Plan:
    """Everything nothing current needs, with the bytes each frees."""
    has_mirrors = GitMirrors(root, Runner()).git_dir.is_dir()
    result = Plan(notes=[need.unknown_mirrors] if need.unknown_mirrors and has_mirrors else [])
    items = _layout_items(root, need) + _pin_items(root, need, keep) + _mirror_items(root, need)
    links: dict[tuple[int, int], int] = {}
    stats: dict[tuple[int, int], os.stat_result] = {}
    owner: dict[tuple[int, int], Item] = {}
    for item in items:
        for stat in (s for p in (item.path, *item.sidecars) for s in _files(p)):
            inode = (stat.st_dev, stat.st_ino)
            links[inode] = links.get(inode, 0) + 1
            stats[inode] = stat
            owner.setdefault(inode, item)
    store = blobstore.store_path(root)
    for blob in blobstore.blob_files(store):
        stat = blob.stat()
        inode = (stat.st_dev, stat.st_ino)
        if stat.st_nlink - links.get(inode, 0) == 1:
            item = Item(blob, "blobs no kept layout names", blob=True)
            items.append(item)
            links[inode] = links.get(inode, 0) + 1
            stats[inode] = stat
            owner.setdefault(inode, item)
    for inode, count in links.items():
        # A folder's link count is its subfolders' `..` entries: a folder in the plan goes whole.
        if count >= stats[inode].st_nlink or stat_module.S_ISDIR(stats[inode].st_mode):
            owner[inode].freed += stats[inode].st_blocks * 512
    result.items = items
    return result


def _try_lock(lock: Path | None) -> int | None:
    """An exclusive hold on the item's lock file (-1: it has none); None when someone holds it."""
    if lock is None or not lock.exists():
        return -1
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def collect(root: Path, planned: Plan) -> tuple[int, list[Item]]:
    """Removes the plan's items (not one while a build from this checkout runs, none whose lock is held);
    returns the bytes freed and the items kept because something held them."""
    store = blobstore.store_path(root)
    removed: list[Item] = []
    held: list[Item] = []
    with buildlock.no_build_running(root):
        for item in planned.items:
            if store in item.path.parents:
                continue  # the store's blobs go last, once every layout is removed or pruned
            fd = _try_lock(item.lock)
            if fd is None:
                held.append(item)
                continue
            try:
                _remove(item.path)
                for sidecar in item.sidecars:
                    if sidecar != item.lock:
                        _remove(sidecar)
                removed.append(item)
            finally:
                if fd >= 0:
                    if item.lock in item.sidecars:
                        item.lock.unlink(missing_ok=True)
                    os.close(fd)
        # Only what no layout links any more: a blob of a held layout stays.
        blobstore.sweep(store)
    removed += [item for item in planned.items if store in item.path.parents and not os.path.lexists(item.path)]
    return sum(item.freed for item in removed), held


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def report(root: Path, planned: Plan) -> list[str]:
    """One line per item but blobs, which are summed per reason."""
    lines = list(planned.notes)
    blobs: dict[str, list[Item]] = {}
    for item in planned.items:
        if item.blob:
            blobs.setdefault(item.why, []).append(item)
        else:
            lines.append(f"{human(item.freed):>10}  {os.path.relpath(item.path, root)}  ({item.why})")
    for why, group in blobs.items():
        lines.append(f"{human(sum(i.freed for i in group)):>10}  {len(group)} {why}")
    return lines


def run(renderings: list[Rendering], root: Path, *, keep: int = 0, delete: bool = False) -> list[str]:
    """`invoke gc`: the report of what nothing current needs, and with `delete` its removal."""
    if keep < 0:
        raise EpbuildError(f"--keep takes the number of earlier pins to keep per kind (0 or more), got {keep}")
    planned = plan(root, needed(renderings, root), keep)
    lines = report(root, planned)
    if not planned.items:
        return [*lines, "nothing to remove"]
    if not delete:
        running = (["a build from this checkout is running: what it is writing shows up here, and `invoke gc --yes` "
                    "removes nothing until it ends"] if buildlock.build_is_running(root) else [])
        return [*lines, *running, f"would free {human(planned.freed)} ({planned.freed} bytes); "
                                  "run `invoke gc --yes` to remove it"]
    freed, held = collect(root, planned)
    lines += [f"kept {os.path.relpath(item.path, root)}: a running build holds it" for item in held]
    return [*lines, f"freed {human(freed)} ({freed} bytes)"]
