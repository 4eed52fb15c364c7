"""rdma-core for the offline example: the real upstream release tarball from Debian's source package, as a
repository with one commit tagged v<version>."""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

from epbuild.offline.base_image import _ensure_minbase
from epbuild.offline.gitrepo import FixtureRepo, _Commit, _digest, _Entry, _install_repo, _stamp_ok
from epbuild.offline.settings import (
    DEBIAN_MIRROR,
    MINBASE_IMAGE,
    RDMA_CORE_ORIG,
    RDMA_CORE_ORIG_SHA256,
    RDMA_CORE_SUITE,
    RDMA_CORE_VERSION,
    OfflineError,
    _run,
    _sha256,
)
from epbuild.util import atomicfs

log = logging.getLogger(__name__)



# rdma-core: the real release tarball, from Debian's source package

_APT_SOURCE_SCRIPT = r"""
set -eu
printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$MIRROR" "$SUITE" /usr/share/keyrings/debian-archive-keyring.gpg > /etc/apt/sources.list.d/epbuild-src.sources
apt-get -o Acquire::Check-Valid-Until=false -qq update >&2
mkdir -p /out && cd /out
# Some mirrors refuse the .dsc; apt checks each file it does fetch against the signed Sources
# index, and only the upstream tarball is wanted here.
apt-get -qq source --download-only "$PKG" >&2 || echo "apt-get source failed; keeping what it fetched" >&2
ls -l >&2
tar -cf - ./*.orig.tar.*
"""


def _fetch_rdma_core_tarball(downloads: Path) -> Path:
    """``apt-get source --download-only rdma-core`` in a throwaway minbase container; cached."""
    target = downloads / RDMA_CORE_ORIG
    if target.is_file() and _sha256(target.read_bytes()) == RDMA_CORE_ORIG_SHA256:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    _ensure_minbase()
    log.info("fetching rdma-core source (Debian %s) into %s", RDMA_CORE_SUITE, downloads)
    proc = _run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "bridge",
            "-e",
            f"MIRROR={DEBIAN_MIRROR}",
            "-e",
            f"SUITE={RDMA_CORE_SUITE}",
            "-e",
            "PKG=rdma-core",
            MINBASE_IMAGE,
            "sh",
            "-c",
            _APT_SOURCE_SCRIPT,
        ],
        capture=True,
    )
    with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
        wanted = [n for n in names if Path(n).name == RDMA_CORE_ORIG]
        if not wanted:
            raise OfflineError(
                f"Debian {RDMA_CORE_SUITE} no longer has {RDMA_CORE_ORIG} (got {names}); "
                "update RDMA_CORE_VERSION/RDMA_CORE_ORIG_SHA256 in epbuild/offline/settings.py"
            )
        member = tar.extractfile(wanted[0])
        assert member is not None
        data = member.read()
    if _sha256(data) != RDMA_CORE_ORIG_SHA256:
        raise OfflineError(f"{RDMA_CORE_ORIG}: sha256 {_sha256(data)} != expected {RDMA_CORE_ORIG_SHA256}")
    atomicfs.write_bytes(target, data)
    return target


def _tarball_tree(tarball: Path) -> list[_Entry]:
    entries: dict[str, _Entry] = {}
    with tarfile.open(tarball) as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts[1:]  # strip rdma-core-X/
            if not parts:
                continue
            rel = "/".join(parts)
            if m.issym():
                entries[rel] = _Entry(rel, "120000", m.linkname.encode())
            elif m.isfile() or m.islnk():
                fh = tar.extractfile(m)
                assert fh is not None
                entries[rel] = _Entry(rel, "100755" if m.mode & 0o111 else "100644", fh.read())
    return [entries[k] for k in sorted(entries)]


def _rdma_core_repo(dest: Path) -> FixtureRepo:
    tag = f"v{RDMA_CORE_VERSION}"
    digest = _digest("rdma-core", RDMA_CORE_ORIG_SHA256, tag)
    final = dest / "rdma-core.git"
    stamp = _stamp_ok(final, digest)
    if stamp is not None:  # checked first: a good repo needs neither the cache nor the network
        log.info("fixture repo %s up to date", final)
        return FixtureRepo("rdma-core", final, dict(stamp["commits"]), stamp.get("tag"))
    tarball = _fetch_rdma_core_tarball(dest.parent / "downloads")
    msg = (
        f"rdma-core {RDMA_CORE_VERSION}\n\nUpstream release tarball {RDMA_CORE_ORIG} from Debian "
        f"{RDMA_CORE_SUITE}'s source package (sha256 {RDMA_CORE_ORIG_SHA256}).\n"
    )
    commits = [_Commit("pinned", msg, tuple(_tarball_tree(tarball)))]
    refs = {"refs/heads/main": "pinned", f"refs/tags/{tag}": "pinned"}
    return _install_repo(dest, "rdma-core", digest, commits, refs, tag=tag)


