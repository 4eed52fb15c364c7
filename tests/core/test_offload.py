"""The offload-bundle reader on files the real toolchain made (tests/data/offload/make.sh: hipcc and
clang-offload-bundler of LLVM 21): plain, zstd-compressed in format versions 2 and 3, two compressed units in one
library, -fgpu-rdc objects and archives. Each file's expected triples are the bundler's own `--list`."""

from __future__ import annotations

from pathlib import Path

import pytest

from epbuild.checks.offload import MAGIC, bundle_triples, gpu_archs

DATA = Path(__file__).resolve().parents[1] / "data" / "offload"


def listing() -> dict[str, set[str]]:
    out = {}
    for line in (DATA / "listing.txt").read_text().splitlines():
        name, _, triples = line.partition("\t")
        out[name] = set(triples.split(","))
    return out


# What make.sh asked hipcc and the bundler for.
ARCHS = {"plain.hipfb": {"gfx942", "gfx950"}, "zstd-v2.hipfb": {"gfx942", "gfx950"},
         "zstd-v3.hipfb": {"gfx942", "gfx950"}, "host-only.hipfb": set(), "rdc.o": {"gfx942", "gfx950"},
         "rdc.a": {"gfx942", "gfx950"}, "plain.so": {"gfx942", "gfx950"}, "zstd-v3.so": {"gfx950"},
         "zstd-two-units.so": {"gfx942", "gfx950"}}


def test_every_made_file_is_listed() -> None:
    assert set(listing()) == set(ARCHS)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_the_reader_agrees_with_the_bundlers_listing(name: str) -> None:
    data = (DATA / name).read_bytes()
    assert set(bundle_triples(data)) == listing()[name]
    assert gpu_archs(data) == ARCHS[name]


def test_the_compressed_files_are_the_format_versions_they_claim() -> None:
    # CCOB, then the format version (u16 little-endian), then the method (u16; 1 = zstd).
    for name, version in (("zstd-v2.hipfb", 2), ("zstd-v3.hipfb", 3)):
        head = (DATA / name).read_bytes()[:8]
        assert head[:4] == b"CCOB" and int.from_bytes(head[4:6], "little") == version
        assert int.from_bytes(head[6:8], "little") == 1
    library = (DATA / "zstd-two-units.so").read_bytes()
    assert library.count(b"CCOB") == 2


@pytest.mark.parametrize("name", ["plain.hipfb", "zstd-v2.hipfb", "zstd-v3.hipfb"])
def test_a_truncated_bundle_carries_no_archs(name: str) -> None:
    data = (DATA / name).read_bytes()
    for cut in (30, len(data) // 2, len(data) - 10):
        assert gpu_archs(data[:cut]) == set()


def test_no_bundle_and_stray_magic_carry_no_archs() -> None:
    assert gpu_archs(b"no bundle here") == set()
    assert gpu_archs(MAGIC + b"\xff" * 40) == set()
