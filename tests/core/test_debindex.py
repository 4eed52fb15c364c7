"""epbuild/inputs/debindex.py (python-debian) on real Debian index files: bookworm-updates' signed InRelease and its
main amd64 Packages index as deb.debian.org served them (tests/core/data/debian/README.md). The expected values
were read off the files by hand; the Release's SHA256 of the index is checked against the file's own digest."""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

import pytest

from epbuild.inputs import debindex

DATA = Path(__file__).parent / "data" / "debian" / "bookworm-updates"
INDEX_PATH = "main/binary-amd64/Packages.xz"
ARCHES = ("amd64", "all")


@pytest.fixture(scope="module")
def release() -> str:
    return (DATA / "InRelease").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def index() -> list[dict[str, str]]:
    return debindex.parse_index(lzma.decompress((DATA / INDEX_PATH).read_bytes()).decode("utf-8"))


def test_clear_signed_release_fields_are_read_past_the_signature_armour(release: str) -> None:
    fields = debindex.parse_stanza(release)
    assert (fields["Suite"], fields["Codename"]) == ("oldstable-updates", "bookworm-updates")
    assert fields["Date"] == "Sat, 05 Dec 2026 02:11:04 UTC"
    assert "BEGIN PGP" not in "".join(fields)


def test_release_sha256_lists_the_index_with_the_digest_and_size_of_the_real_file(release: str) -> None:
    sums = debindex.release_sha256(release)
    data = (DATA / INDEX_PATH).read_bytes()
    assert sums[INDEX_PATH] == (hashlib.sha256(data).hexdigest(), len(data))
    assert sums[INDEX_PATH] == ("87e7e94047fb7fb6f4ceecc7022d4bee55b66031cc2a7666d3196f3e0aabb846", 6924)
    assert sums["main/binary-amd64/Packages"] == (
        "80a1f6ee524222c49f230fc5700d00f946d0a47eb5258180106dd03df126e16a", 32757)
    # The empty non-free-firmware index is listed too (size 0 is a size, not a missing one).
    assert sums["non-free-firmware/binary-amd64/Packages"] == (hashlib.sha256(b"").hexdigest(), 0)


def test_every_stanza_of_the_index_is_read(index: list[dict[str, str]]) -> None:
    names = [entry["Package"] for entry in index]
    assert len(names) == 38  # `grep -c '^Package:'`
    assert names[:3] == ["ca-certificates", "openssh-client", "openssh-server"] and names[-1] == "tzdata"


def test_pick_gives_the_entry_at_its_version_with_the_fields_a_download_needs(index: list[dict[str, str]]) -> None:
    entry = debindex.pick(index, "ca-certificates", "20230311+deb12u1", ARCHES)
    assert entry is not None and entry["Architecture"] == "all"
    assert entry["Filename"] == "pool/main/c/ca-certificates/ca-certificates_20230311+deb12u1_all.deb"
    assert (entry["SHA256"], entry["Size"]) == (
        "0d5f444f594e48c1e16a41d8fc628a09b24c658916a1274025c2330f2a802bed", "155260")
    client = debindex.pick(index, "openssh-client", "1:9.2p1-2+deb12u7", ARCHES)
    assert client is not None and client["SHA256"] == (
        "ebcf438221dabddee078bbdf79f1f126f345ed6e7f830662bf13ae1aece6b629")
    assert debindex.pick(index, "openssh-client", "1:9.2p1-2+deb12u6", ARCHES) is None
    assert debindex.versions(index, "openssh-client", ARCHES) == ["1:9.2p1-2+deb12u7"]
    assert debindex.versions(index, "openssh-client", ("arm64",)) == []


def test_dependency_names_read_every_alternative_and_pre_depends(index: list[dict[str, str]]) -> None:
    askpass = debindex.pick(index, "ssh-askpass-gnome", "1:9.2p1-2+deb12u7", ARCHES)
    assert askpass is not None
    # Depends: openssh-client | ssh (>= 1:1.2pre7-4), libc6 (>= 2.34), libglib2.0-0 (>= 2.12.0), libgtk-3-0 (>= ...)
    assert debindex.dependency_names(askpass) == ["openssh-client", "ssh", "libc6", "libglib2.0-0", "libgtk-3-0"]
    server = debindex.pick(index, "openssh-server", "1:9.2p1-2+deb12u7", ARCHES)
    assert server is not None
    names = debindex.dependency_names(server)
    assert names[0] == "init-system-helpers"  # its Pre-Depends, read before Depends
    assert {"debconf", "debconf-2.0", "openssh-client", "zlib1g"} <= set(names)
    assert "default-logind" not in names  # a Recommends, which the build does not install
    samba = debindex.pick(index, "python3-samba", "2:4.17.12+dfsg-0+deb12u2", ARCHES)
    assert samba is not None and "python3" in debindex.dependency_names(samba)  # `python3:any` is python3
    assert "python3:any" not in debindex.dependency_names(samba)


def test_unpinned_dependencies_are_those_the_index_carries(index: list[dict[str, str]]) -> None:
    server = debindex.pick(index, "openssh-server", "1:9.2p1-2+deb12u7", ARCHES)
    assert server is not None
    # Of the names in its Depends, this index carries libssl3, openssh-client and openssh-sftp-server.
    assert debindex.unpinned_dependencies(index, server, {"openssh-server"}) == [
        "libssl3", "openssh-client", "openssh-sftp-server"]
    assert debindex.unpinned_dependencies(index, server, {"libssl3", "openssh-client"}) == ["openssh-sftp-server"]
