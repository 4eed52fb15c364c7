"""Fetches a NIC's vendor packages on the host, verified end to end, before any stage runs.

The chain apt itself follows: the signing key must have the fingerprint the matrix pins (checked with gpg); the
suite's InRelease (or Release + Release.gpg) must carry a good signature by that key (gpgv); the Packages index
must match the size and SHA256 the signed Release gives; each pinned package must be in the index at its pinned
version; each .deb must match the size and SHA256 the index gives. The verified .debs go to
build/vendor/<nic>-<digest>/, which bake hands to the `vendor` stage as a named context, so the build itself
needs no network and no key. Everything is written under a temporary name and renamed into place last, under a
lock: a failed fetch leaves nothing a later run would take as verified.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import lzma
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from epbuild.inputs import debindex
from epbuild.model.vendor import VendorUserspace
from epbuild.util import atomicfs
from epbuild.util.commands import CommandFailed, Runner, shell_line
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import vendor_dir

log = logging.getLogger(__name__)

MARKER = ".epbuild-vendor.json"
INDEXES = ("Packages.xz", "Packages.gz", "Packages")
ARCHES = ("amd64", "all")


class VendorRepoError(EpbuildError):
    pass


class VendorUnreachable(VendorRepoError):
    """The repository could not be reached at all: nothing about its packages was checked."""


@dataclass(frozen=True)
class VendorRequest:
    nic: str
    vendor: VendorUserspace

    @property
    def key(self) -> str:
        """The matrix key the request comes from, for error messages."""
        return f"nics.{self.nic}.vendor"


@dataclass(frozen=True)
class FetchedVendor:
    nic: str
    path: Path
    debs: list[str]
    cached: bool


def download(url: str, *, timeout: float = 60.0, attempts: int = 3, backoff: float = 2.0) -> bytes:
    """The body at `url`; a connection failure is retried, an HTTP error answer is not."""
    attempt = 1
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the URL passed APT_URL)
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            raise VendorRepoError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            if attempt == attempts:
                reason = getattr(exc, "reason", exc)
                raise VendorUnreachable(f"cannot fetch {url}: {reason} (after {attempts} attempts)") from None
            log.warning("fetching %s failed (%s); retrying", url, getattr(exc, "reason", exc))
            time.sleep(backoff * 2 ** (attempt - 1))
            attempt += 1


class VendorCache:
    def __init__(self, root: Path, runner: Runner) -> None:
        self.root = root
        self.runner = runner

    def fetch(self, request: VendorRequest) -> FetchedVendor:
        vendor = request.vendor
        dest = self.root / vendor_dir(request.nic, vendor.digest())
        if self.runner.dry_run:
            self._plan(request, dest)
            return FetchedVendor(request.nic, dest, [], cached=False)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest) + ".lock"):
            marker = _read_marker(dest)
            if marker is not None:
                damaged = _damaged(dest, marker)
                if damaged is None:
                    return FetchedVendor(request.nic, dest, sorted(marker["debs"]), cached=True)
                log.warning("%s: the cached %s does not match the SHA256 recorded when it was verified; fetching "
                            "it again", request.key, damaged)
            # Swapped in whole: dest is the old verified folder or the new one, never a partial one.
            with atomicfs.filled_dir(dest, f".{dest.name}.") as tmp:
                debs = self._fetch_into(request, tmp)
        log.info("%s: verified %s into %s", request.key, ", ".join(debs), dest)
        return FetchedVendor(request.nic, dest, debs, cached=False)

    def _plan(self, request: VendorRequest, dest: Path) -> None:
        marker = _read_marker(dest)
        if marker is not None and _damaged(dest, marker) is None:
            print(f"# {request.key}: {dest} is verified already; nothing to fetch")
            return
        vendor = request.vendor
        self.runner.record(shell_line(["curl", "-fsSL", vendor.key.url, "-o", "vendor.key"]))
        self.runner.record(shell_line(["gpg", "--show-keys", "--with-colons", "vendor.key"]))
        base = f"{vendor.repo.url.rstrip('/')}/dists/{vendor.repo.suite}"
        self.runner.record(shell_line(["curl", "-fsSL", f"{base}/InRelease", "-o", "InRelease"]))
        self.runner.record(shell_line(["gpgv", "--keyring", "vendor.gpg", "--output", "Release", "InRelease"]))
        print(f"# {request.key}: then the Packages index and each pinned .deb, checked against the signed SHA256s, "
              f"into {dest}")

    def _fetch_into(self, request: VendorRequest, tmp: Path) -> list[str]:
        vendor = request.vendor
        work = tmp / ".work"
        work.mkdir()
        try:
            keyring = self._verified_keyring(request, work)
            release = self._verified_release(request, keyring, work)
            index = self._packages_index(request, release)
            debs = []
            for name, version in sorted(vendor.packages.items()):
                entry = debindex.pick(index, name, version, ARCHES)
                if entry is None:
                    offered = debindex.versions(index, name, ARCHES)
                    what = (f"lists {name} at {', '.join(offered)}" if offered else f"has no package {name}")
                    ask = ("pin one of them" if version == "unknown"
                           else f"it has no {name} {version}; pin a version it has")
                    raise VendorRepoError(f"{request.key}.packages.{name}: the signed index of "
                                          f"{self._suite_url(vendor)} {what}; {ask}")
                missing = debindex.unpinned_dependencies(index, entry, set(vendor.packages))
                if missing:
                    raise VendorRepoError(
                        f"{request.key}.packages: {name} {version} depends on {', '.join(missing)}, which "
                        f"{vendor.repo.url} carries: pin {'it' if len(missing) == 1 else 'them'} there too")
                debs.append(self._deb(request, entry, tmp))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        # Each .deb's SHA256 (the signed index's, checked above): a later run reuses a file only if it still has it.
        (tmp / MARKER).write_text(json.dumps(
            {"repo": vendor.repo.model_dump(), "fingerprint": vendor.key.fingerprint,
             "packages": dict(vendor.packages), "debs": debs,
             "sha256": {name: hashlib.sha256((tmp / name).read_bytes()).hexdigest() for name in debs}},
            indent=2, sort_keys=True) + "\n")
        return debs

    @staticmethod
    def _suite_url(vendor: VendorUserspace) -> str:
        return f"{vendor.repo.url.rstrip('/')}/dists/{vendor.repo.suite}"

    def _verified_keyring(self, request: VendorRequest, work: Path) -> Path:
        """The vendor's key as a gpgv keyring, after its fingerprint matched the matrix's."""
        key = request.vendor.key
        self.runner.record(shell_line(["curl", "-fsSL", key.url, "-o", "vendor.key"]))
        raw = work / "vendor.key"
        raw.write_bytes(download(key.url))
        listing = self._gpg(["--show-keys", "--with-colons", str(raw)], work, f"{key.url} is not an OpenPGP key")
        primaries = debindex.primary_fingerprints(listing)
        if key.fingerprint == "unknown":
            raise VendorRepoError(
                f"{request.key}.key.fingerprint is unknown: the key at {key.url} has fingerprint "
                f"{', '.join(primaries) or '(none)'}. Check it with the vendor through another channel, then "
                "write it into the matrix; epbuild never trusts a key on first use")
        if primaries != [key.fingerprint]:
            raise VendorRepoError(
                f"{request.key}.key.fingerprint: the key at {key.url} has fingerprint "
                f"{', '.join(primaries) or '(none)'}, not {key.fingerprint}; nothing was fetched or cached")
        # The file holds exactly the pinned primary key (checked above), so it is the whole keyring gpgv trusts.
        keyring = work / "vendor.gpg"
        if raw.read_bytes().lstrip().startswith(b"-----BEGIN PGP"):
            self._gpg(["--output", str(keyring), "--dearmor", str(raw)], work, f"gpg cannot read {key.url}")
        else:
            shutil.copyfile(raw, keyring)
        return keyring

    def _verified_release(self, request: VendorRequest, keyring: Path, work: Path) -> str:
        """The Release text whose signature gpgv verified with the pinned key (InRelease, else Release.gpg)."""
        base = self._suite_url(request.vendor)
        verified = work / "Release.verified"
        try:
            signed = work / "InRelease"
            signed.write_bytes(download(f"{base}/InRelease"))
            argv = ["gpgv", "--keyring", str(keyring), "--output", str(verified), str(signed)]
            what = f"{base}/InRelease"
        except VendorRepoError:
            release, signature = work / "Release", work / "Release.gpg"
            release.write_bytes(download(f"{base}/Release"))
            signature.write_bytes(download(f"{base}/Release.gpg"))
            argv = ["gpgv", "--keyring", str(keyring), str(signature), str(release)]
            shutil.copyfile(release, verified)
            what = f"{base}/Release"
        try:
            self.runner.run(argv, capture=True)
        except CommandFailed as exc:
            reason = exc.output.strip().splitlines()[-1] if exc.output.strip() else f"exit {exc.returncode}"
            raise VendorRepoError(f"{request.key}: {what} does not carry a good signature by "
                                  f"{request.vendor.key.fingerprint} (gpgv: {reason}); nothing was cached") from None
        text = verified.read_text(encoding="utf-8", errors="replace")
        fields = debindex.parse_stanza(text)
        suite = request.vendor.repo.suite
        if suite not in (fields.get("Suite"), fields.get("Codename")):
            raise VendorRepoError(f"{request.key}.repo.suite: {what} is signed for suite "
                                  f"{fields.get('Suite')}/{fields.get('Codename')}, not {suite}")
        return text

    def _packages_index(self, request: VendorRequest, release: str) -> list[dict[str, str]]:
        repo = request.vendor.repo
        sums = debindex.release_sha256(release)
        base = self._suite_url(request.vendor)
        for name in INDEXES:
            path = f"{repo.component}/binary-amd64/{name}"
            if path not in sums:
                continue
            digest, size = sums[path]
            data = download(f"{base}/{path}")
            _check(data, digest, size, f"{base}/{path}", "the signed Release")
            if name.endswith(".xz"):
                data = lzma.decompress(data)
            elif name.endswith(".gz"):
                data = gzip.decompress(data)
            return debindex.parse_index(data.decode("utf-8", errors="replace"))
        raise VendorRepoError(f"{request.key}.repo: the signed Release of {base} lists no SHA256 for "
                              f"{repo.component}/binary-amd64/Packages; check the component")

    def _deb(self, request: VendorRequest, entry: dict[str, str], tmp: Path) -> str:
        url = f"{request.vendor.repo.url.rstrip('/')}/{entry['Filename']}"
        self.runner.record(shell_line(["curl", "-fsSL", url, "-O"]))
        data = download(url)
        _check(data, entry.get("SHA256", ""), int(entry.get("Size", "-1")), url, "the signed Packages index")
        name = Path(entry["Filename"]).name
        (tmp / name).write_bytes(data)
        return name

    def _gpg(self, args: list[str], work: Path, failure: str) -> str:
        argv = ["gpg", "--batch", "--no-tty", "--quiet", "--yes", *args]
        # Never the user's keyring, and a short path: gpg's sockets under GNUPGHOME must fit a socket name.
        with tempfile.TemporaryDirectory(prefix="epb-gpg-") as home:
            try:
                return self.runner.run(argv, capture=True, env={"GNUPGHOME": home}).stdout
            except CommandFailed as exc:
                reason = exc.output.strip().splitlines()[-1] if exc.output.strip() else f"exit {exc.returncode}"
                raise VendorRepoError(f"{failure} ({reason})") from None


def _check(data: bytes, sha256: str, size: int, url: str, source: str) -> None:
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise VendorRepoError(f"{url}: size {len(data)} sha256 {hashlib.sha256(data).hexdigest()} does not match "
                              f"{source} (size {size} sha256 {sha256 or '(none)'}); nothing was cached")


def _read_marker(dest: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("debs"), list) else None


def _damaged(dest: Path, marker: dict[str, Any]) -> str | None:
    """The first cached .deb that is missing or no longer has its recorded SHA256 (an edited or truncated file,
    or a marker from before hashes were recorded), or None when every one checks out. The .debs are small."""
    sums = marker.get("sha256")
    for name in marker["debs"]:
        path = dest / name
        if not isinstance(sums, dict) or not path.is_file():
            return name
        if hashlib.sha256(path.read_bytes()).hexdigest() != sums.get(name):
            return name
    return None


def fetch_all(root: Path, runner: Runner, requests: list[VendorRequest]) -> list[FetchedVendor]:
    cache = VendorCache(root, runner)
    return [cache.fetch(r) for r in requests]
