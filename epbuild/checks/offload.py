"""Lists the GPU archs whose device code a file carries, by reading clang offload bundles.

Works on objects and static archives (a -fgpu-rdc object names one ELF section per bundle entry) and shared
libraries (a bundle sits in .hip_fatbin), without a GPU and without LLVM tools: the same answer `clang-offload-bundler --list` gives.
Bundle layout: clang/lib/Driver/OffloadBundler.cpp (plain "__CLANG_OFFLOAD_BUNDLE__" and compressed "CCOB", format
versions 2 and 3); tests/data/offload/ holds what LLVM 21's hipcc and clang-offload-bundler write, to check against.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
COMPRESSED_MAGIC = b"CCOB"
_TRIPLE = re.compile(rb"^[A-Za-z0-9_.:+-]{3,200}$")


class BundleError(Exception):
    pass


def bundle_triples(data: bytes) -> list[str]:
    """Every entry triple of every bundle in `data`, in file order (with duplicates)."""
    triples: list[str] = []
    for start in _find_all(data, MAGIC):
        triples += _plain_entries(data, start) or _section_name_entry(data, start)
    for start in _find_all(data, COMPRESSED_MAGIC):
        inner = _decompress(data, start)
        if inner is not None:
            triples += bundle_triples(inner)
    return triples


def gpu_archs(data: bytes) -> set[str]:
    """The AMD GPU archs with device code, e.g. {'gfx942', 'gfx950'} ('hipv4-amdgcn-amd-amdhsa--gfx942:xnack-')."""
    archs = set()
    for triple in bundle_triples(data):
        if "amdgcn" in triple:
            target = triple.rsplit("--", 1)[-1] if "--" in triple else triple.rsplit("-", 1)[-1]
            archs.add(target.split(":", 1)[0])
    return archs


def file_gpu_archs(path: Path) -> set[str]:
    return gpu_archs(path.read_bytes())


def _find_all(data: bytes, needle: bytes) -> list[int]:
    out, pos = [], data.find(needle)
    while pos != -1:
        out.append(pos)
        pos = data.find(needle, pos + 1)
    return out


def _plain_entries(data: bytes, start: int) -> list[str]:
    """Entries of the bundle at `start`; a stray occurrence of the magic (e.g. a string table) yields none."""
    pos = start + len(MAGIC)
    if pos + 8 > len(data):
        return []
    (count,) = struct.unpack_from("<Q", data, pos)
    if not 0 < count < 1024:
        return []
    pos += 8
    triples = []
    for _ in range(count):
        if pos + 24 > len(data):
            return []
        offset, size, triple_len = struct.unpack_from("<QQQ", data, pos)
        pos += 24
        raw = data[pos:pos + triple_len]
        pos += triple_len
        if not _TRIPLE.match(raw) or start + offset + size > len(data):
            return []
        triples.append(raw.decode())
    return triples


def _section_name_entry(data: bytes, start: int) -> list[str]:
    """A -fgpu-rdc object keeps each bundle entry as an ELF section named `__CLANG_OFFLOAD_BUNDLE__<triple>`."""
    pos = start + len(MAGIC)
    end = data.find(b"\0", pos, pos + 201)
    if end == -1:
        return []
    raw = data[pos:end]
    return [raw.decode()] if _TRIPLE.match(raw) and b"-" in raw else []


def _decompress(data: bytes, start: int) -> bytes | None:
    if start + 8 > len(data):
        return None
    version, method = struct.unpack_from("<HH", data, start + 4)
    if version == 1:
        header, size_fmt = 4 + 2 + 2 + 4 + 8, None
    elif version == 2:
        header, size_fmt = 4 + 2 + 2 + 4 + 4 + 8, "<I"
    elif version == 3:
        header, size_fmt = 4 + 2 + 2 + 8 + 8 + 8, "<Q"
    else:
        return None
    end = len(data)
    if size_fmt is not None:
        (total,) = struct.unpack_from(size_fmt, data, start + 8)
        end = min(end, start + total)
    payload = data[start + header:end]
    if method == 0:
        try:
            return zlib.decompressobj().decompress(payload)
        except zlib.error:
            return None
    if method == 1:
        try:
            import zstandard
        except ImportError as exc:  # pragma: no cover - listed in ci/requirements.txt
            raise BundleError("a zstd-compressed offload bundle needs the zstandard package") from exc
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        except zstandard.ZstdError:
            return None
    return None
