"""The offload-bundle reader on the three layouts clang writes (layout: clang/lib/Driver/OffloadBundler.cpp)."""

from __future__ import annotations

import struct
import zlib

from epbuild.offload import COMPRESSED_MAGIC, MAGIC, bundle_triples, gpu_archs


def plain_bundle(triples: list[str], payload: bytes = b"\x7fELF....") -> bytes:
    header = MAGIC + struct.pack("<Q", len(triples))
    entries = b""
    size_of_entries = sum(24 + len(t) for t in triples)
    offset = len(header) + size_of_entries
    for t in triples:
        entries += struct.pack("<QQQ", offset, len(payload), len(t)) + t.encode()
        offset += len(payload)
    return header + entries + payload * len(triples)


def test_plain_bundle_inside_a_shared_library() -> None:
    lib = b"\x7fELF" + b"\0" * 100 + plain_bundle(
        ["host-x86_64-unknown-linux-gnu-", "hipv4-amdgcn-amd-amdhsa--gfx942", "hipv4-amdgcn-amd-amdhsa--gfx950:xnack-"]
    ) + b"\0" * 50
    assert gpu_archs(lib) == {"gfx942", "gfx950"}


def test_rdc_object_names_its_entries_as_sections() -> None:
    strtab = b"\0.text\0" + MAGIC + b"hip-amdgcn-amd-amdhsa--gfx950\0" + MAGIC + b"host-x86_64-pc-linux-gnu-\0"
    assert bundle_triples(strtab) == ["hip-amdgcn-amd-amdhsa--gfx950", "host-x86_64-pc-linux-gnu-"]
    assert gpu_archs(b"!<arch>\n" + strtab * 3) == {"gfx950"}


def test_compressed_bundle_v2_zlib() -> None:
    inner = plain_bundle(["hipv4-amdgcn-amd-amdhsa--gfx942"])
    payload = zlib.compress(inner)
    header_size = 4 + 2 + 2 + 4 + 4 + 8
    blob = COMPRESSED_MAGIC + struct.pack("<HHIIQ", 2, 0, header_size + len(payload), len(inner), 0) + payload
    assert gpu_archs(b"junk" + blob + b"tail") == {"gfx942"}


def test_host_only_and_stray_magic_carry_no_archs() -> None:
    assert gpu_archs(b"no bundle here") == set()
    assert gpu_archs(MAGIC + b"\xff" * 40) == set()
    assert gpu_archs(plain_bundle(["host-x86_64-unknown-linux-gnu-"])) == set()
