"""Runs inside an image being derived broken (tests/integration/broken_images.py COPYs it in and removes it):
small, exact edits that break one property each. Standard library only; every edit fails loudly when what it
edits is not there, so a breakage that silently breaks nothing cannot pass for a check that fails."""

from __future__ import annotations

import importlib.metadata as md
import pathlib
import py_compile
import re
import subprocess
import sys


def dist(name: str) -> md.Distribution:
    return md.distribution(name)


def dist_files(name: str, suffix: str) -> list[pathlib.Path]:
    found = [pathlib.Path(str(dist(name).locate_file(f))) for f in dist(name).files or [] if str(f).endswith(suffix)]
    if not found:
        sys.exit(f"{name} has no file ending {suffix}")
    return found


def replace_bytes(paths: list[pathlib.Path], old: str, new: str) -> None:
    """Same-length replacement in binaries (a string table entry, an offload bundle's target id)."""
    if len(old) != len(new):
        sys.exit(f"{old!r} and {new!r} differ in length")
    hits = 0
    for path in paths:
        data = path.read_bytes()
        if old.encode() in data:
            path.write_bytes(data.replace(old.encode(), new.encode()))
            hits += 1
    if not hits:
        sys.exit(f"{old!r} is in none of {', '.join(map(str, paths))}")


def set_version(name: str, version: str) -> None:
    """The distribution's own metadata and its /app/versions.txt line both say `version` (so only a check that
    compares them with the pin notices)."""
    meta = pathlib.Path(str(dist(name)._path)) / "METADATA"  # type: ignore[attr-defined]
    old = dist(name).version
    meta.write_text(re.sub(r"^Version: .*$", f"Version: {version}", meta.read_text(), count=1, flags=re.M))
    versions = pathlib.Path("/app/versions.txt")
    lines, hits = [], 0
    for line in versions.read_text().splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.endswith("_VERSION") and value == old and \
                re.sub(r"[-_.]+", "-", key[:-8].lower()) == re.sub(r"[-_.]+", "-", name.lower()):
            line, hits = f"{key}: {version}", hits + 1
        lines.append(line)
    if hits != 1:
        sys.exit(f"/app/versions.txt has {hits} version lines for {name} {old}")
    versions.write_text("\n".join(lines) + "\n")


def unrecord(name: str, part: str) -> None:
    """Drops the RECORD lines naming `part`: the file stays, the distribution no longer lists it."""
    record = pathlib.Path(str(dist(name)._path)) / "RECORD"  # type: ignore[attr-defined]
    lines = record.read_text().splitlines()
    kept = [line for line in lines if part not in line.split(",")[0]]
    if len(kept) == len(lines):
        sys.exit(f"{name}'s RECORD names no {part}")
    record.write_text("\n".join(kept) + "\n")


def timestamp_pyc(name: str) -> None:
    """Compiles one of the distribution's modules again as a timestamp-based .pyc, where its RECORD lists it."""
    for pyc in dist_files(name, ".pyc"):
        source = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
        if source.is_file():
            py_compile.compile(str(source), cfile=str(pyc), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
            return
    sys.exit(f"{name} has no .pyc beside its source")


def rename_needed(name: str, old: str, new: str) -> None:
    """The distribution's libraries need `new...` instead of each `old...` library they need; a link of that name in
    the loader's default folder points at what `old...` resolved to, so they still load (ldconfig is not run: it
    would re-link by SONAME)."""
    libdir = pathlib.Path("/usr/lib/x86_64-linux-gnu")
    libs = dist_files(name, ".so")
    renamed = 0
    for lib in libs:
        dynamic = subprocess.run(["readelf", "-d", str(lib)], check=True, capture_output=True, text=True).stdout
        needed = [n for n in re.findall(r"Shared library: \[(\S+)\]", dynamic) if n.startswith(old)]
        if not needed:
            continue
        resolved = subprocess.run(["ldd", str(lib)], check=True, capture_output=True, text=True).stdout
        for soname in needed:
            target = re.search(rf"^\s*{re.escape(soname)} => (\S+)", resolved, re.M)
            if target is None:
                sys.exit(f"{lib}: {soname} does not resolve")
            link = libdir / (new + soname[len(old):])
            if not link.exists():
                link.symlink_to(target.group(1))
        replace_bytes([lib], old, new)
        renamed += 1
    if not renamed:
        sys.exit(f"no library of {name} needs {old}*")


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "bytes":  # bytes DIST SUFFIX OLD NEW: in every file of DIST ending SUFFIX
        replace_bytes(dist_files(args[0], args[1]), args[2], args[3])
    elif command == "file-bytes":  # file-bytes PATH OLD NEW
        replace_bytes([pathlib.Path(args[0])], args[1], args[2])
    elif command == "append":  # append DIST SUFFIX TEXT: to the first file of DIST ending SUFFIX
        path = dist_files(args[0], args[1])[0]
        path.write_text(path.read_text() + args[2] + "\n")
    elif command == "path":  # path DIST SUFFIX: print the first file of DIST ending SUFFIX
        print(dist_files(args[0], args[1])[0])
    elif command == "version":
        set_version(args[0], args[1])
    elif command == "unrecord":
        unrecord(args[0], args[1])
    elif command == "rename-needed":  # rename-needed DIST OLD NEW (same length)
        rename_needed(args[0], args[1], args[2])
    elif command == "timestamp-pyc":
        timestamp_pyc(args[0])
    else:
        sys.exit(f"unknown edit {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
