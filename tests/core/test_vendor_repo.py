"""The vendor packages fetch (epbuild/inputs/vendor_repo.py) against a real signed apt repository served over HTTP:
made here with gpg and the offline example's throwaway key, so every verification step runs for real. Each bad
repository fails with a clear error and leaves nothing under build/vendor/."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from epbuild.inputs.vendor_repo import VendorCache, VendorRepoError, VendorRequest, download
from epbuild.model.vendor import VendorUserspace
from epbuild.offline import throwaway_key
from epbuild.offline.vendor_apt_repo import serve
from epbuild.util.commands import Runner

DEBS = {("bnxt-rocelib", "235.2.86.0"): b"stand-in deb 235.2.86.0", ("bnxt-rocelib", "235.2.80.0"): b"older deb",
        ("bnxt-re-conf", "235.2.86.0"): b"conf deb"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_repo(root: Path, *, depends: str = "libc6") -> Path:
    """A repository in the layout apt reads: pool/ with the .debs, dists/jammy/ with a Packages index and a
    Release that lists its SHA256, clear-signed into InRelease by the throwaway key."""
    stanzas = []
    for (name, version), data in DEBS.items():
        rel = f"pool/main/{name}_{version}_amd64.deb"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        dep = f"Depends: {depends}\n" if name == "bnxt-rocelib" else ""
        stanzas.append(f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n{dep}Filename: {rel}\n"
                       f"Size: {len(data)}\nSHA256: {sha256(data)}\n")
    packages = "\n".join(stanzas).encode()
    dists = root / "dists" / "jammy"
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    (dists / "main" / "binary-amd64" / "Packages.gz").write_bytes(gzip.compress(packages))
    gz = (dists / "main" / "binary-amd64" / "Packages.gz").read_bytes()
    (dists / "Release").write_text(f"Suite: jammy\nCodename: jammy\nSHA256:\n {sha256(gz)} {len(gz)} "
                                   "main/binary-amd64/Packages.gz\n")
    home = root.parent / "gnupg"
    home.mkdir(mode=0o700)
    (home / "secret.gpg").write_bytes(throwaway_key.secret_key())
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--yes"]
    subprocess.run([*gpg, "--import", str(home / "secret.gpg")], check=True, capture_output=True)
    subprocess.run([*gpg, "--clearsign", "--output", str(dists / "InRelease"), str(dists / "Release")], check=True)
    subprocess.run([*gpg, "--armor", "--output", str(root / "key.asc"), "--export", throwaway_key.fingerprint()],
                   check=True)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = make_repo(tmp_path / "repo")
    with serve(root, port=0) as url:
        yield root, url


def vendor(url: str, **changes: Any) -> VendorUserspace:
    data: dict[str, Any] = {
        "repo": {"url": url, "suite": "jammy", "component": "main"},
        "key": {"url": f"{url}/key.asc", "fingerprint": throwaway_key.fingerprint()},
        "packages": {"bnxt-rocelib": "235.2.86.0"},
    }
    for key, value in changes.items():
        data[key] = value
    return VendorUserspace.model_validate(data)


@pytest.fixture
def fetch(tmp_path: Path) -> Callable[[VendorUserspace], Any]:
    cache = VendorCache(tmp_path / "project", Runner())
    return lambda v: cache.fetch(VendorRequest("thor2", v))


def cached_entries(tmp_path: Path) -> list[str]:
    folder = tmp_path / "project" / "build" / "vendor"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.is_dir() else []


def test_verified_debs_are_exactly_the_pinned_ones_and_cached(repo: tuple[Path, str], fetch: Any,
                                                                tmp_path: Path) -> None:
    root, url = repo
    first = fetch(vendor(url))
    assert first.debs == ["bnxt-rocelib_235.2.86.0_amd64.deb"] and not first.cached
    assert (first.path / first.debs[0]).read_bytes() == (root / "pool/main" / first.debs[0]).read_bytes()
    assert fetch(vendor(url)).cached
    assert cached_entries(tmp_path) == [first.path.name]


@pytest.mark.parametrize("damage", ["edited", "truncated", "removed"])
def test_a_damaged_cached_deb_is_noticed_and_fetched_again(repo: tuple[Path, str], fetch: Any, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture, damage: str) -> None:
    root, url = repo
    first = fetch(vendor(url))
    cached = first.path / first.debs[0]
    original = (root / "pool/main" / first.debs[0]).read_bytes()
    if damage == "edited":
        cached.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    elif damage == "truncated":
        cached.write_bytes(original[: len(original) // 2])
    else:
        cached.unlink()
    with caplog.at_level("WARNING"):
        again = fetch(vendor(url))
    assert not again.cached and cached.read_bytes() == original
    [notice] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert notice == (f"nics.thor2.vendor: the cached {first.debs[0]} does not match the SHA256 recorded when it "
                      "was verified; fetching it again")
    assert fetch(vendor(url)).cached


def test_wrong_fingerprint_fails_and_caches_nothing(repo: tuple[Path, str], fetch: Any, tmp_path: Path) -> None:
    _, url = repo
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    with pytest.raises(VendorRepoError) as err:
        fetch(vendor(url, key={"url": f"{url}/key.asc", "fingerprint": wrong}))
    assert f"has fingerprint {throwaway_key.fingerprint()}, not {wrong}" in str(err.value)
    assert "nics.thor2.vendor.key.fingerprint" in str(err.value)
    assert cached_entries(tmp_path) == []


def test_unknown_fingerprint_is_never_trusted_and_names_the_real_one(repo: tuple[Path, str], fetch: Any,
                                                                     tmp_path: Path) -> None:
    _, url = repo
    with pytest.raises(VendorRepoError, match=f"has fingerprint {throwaway_key.fingerprint()}.*never trusts"):
        fetch(vendor(url, key={"url": f"{url}/key.asc", "fingerprint": "unknown"}))
    assert cached_entries(tmp_path) == []


def test_tampered_release_fails_the_signature_check(repo: tuple[Path, str], fetch: Any, tmp_path: Path) -> None:
    root, url = repo
    signed = root / "dists" / "jammy" / "InRelease"
    text = signed.read_text()
    assert "Suite: jammy" in text
    signed.write_text(text.replace("Suite: jammy", "Suite: jammy-evil", 1))
    with pytest.raises(VendorRepoError, match="does not carry a good signature") as err:
        fetch(vendor(url))
    assert "BAD signature" in str(err.value)
    assert cached_entries(tmp_path) == []


def test_index_not_matching_the_signed_release_fails(repo: tuple[Path, str], fetch: Any, tmp_path: Path) -> None:
    root, url = repo
    index = root / "dists" / "jammy" / "main" / "binary-amd64" / "Packages.gz"
    index.write_bytes(gzip.compress(b"Package: bnxt-rocelib\nVersion: 235.2.86.0\n"))
    with pytest.raises(VendorRepoError, match="does not match the signed Release"):
        fetch(vendor(url))
    assert cached_entries(tmp_path) == []


def test_swapped_deb_fails_its_sha256(repo: tuple[Path, str], fetch: Any, tmp_path: Path) -> None:
    root, url = repo
    (root / "pool/main/bnxt-rocelib_235.2.86.0_amd64.deb").write_bytes(b"something else entirely")
    with pytest.raises(VendorRepoError, match="does not match the signed Packages index"):
        fetch(vendor(url))
    assert cached_entries(tmp_path) == []


def test_pinned_version_missing_lists_what_the_index_has(repo: tuple[Path, str], fetch: Any, tmp_path: Path) -> None:
    _, url = repo
    with pytest.raises(VendorRepoError) as err:
        fetch(vendor(url, packages={"bnxt-rocelib": "235.2.99.0"}))
    message = str(err.value)
    assert "nics.thor2.vendor.packages.bnxt-rocelib" in message
    assert "lists bnxt-rocelib at 235.2.80.0, 235.2.86.0" in message and "no bnxt-rocelib 235.2.99.0" in message
    assert cached_entries(tmp_path) == []


def test_dependency_the_vendor_carries_must_be_pinned(tmp_path: Path, fetch: Any) -> None:
    root = make_repo(tmp_path / "repo", depends="libc6, bnxt-re-conf (= 235.2.86.0)")
    with serve(root, port=0) as url:
        with pytest.raises(VendorRepoError, match="depends on bnxt-re-conf, which .* carries: pin it"):
            fetch(vendor(url))
        both = fetch(vendor(url, packages={"bnxt-rocelib": "235.2.86.0", "bnxt-re-conf": "235.2.86.0"}))
    assert both.debs == ["bnxt-re-conf_235.2.86.0_amd64.deb", "bnxt-rocelib_235.2.86.0_amd64.deb"]


def test_throwaway_key_is_the_same_on_every_machine(tmp_path: Path) -> None:
    # The example's matrix pins this fingerprint; gpg, not our code, computes it from the key we make.
    key = tmp_path / "secret.gpg"
    key.write_bytes(throwaway_key.secret_key())
    out = subprocess.run(["gpg", "--homedir", str(tmp_path), "--batch", "--with-colons", "--show-keys", str(key)],
                         capture_output=True, text=True, check=True).stdout
    subprocess.run(["gpgconf", "--homedir", str(tmp_path), "--kill", "gpg-agent"], capture_output=True)
    fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
    assert fprs == ["74F543507BAC305CE7E9673C56217FE1A35F57BE"]
    examples = (Path(__file__).resolve().parents[2] / "examples" / "offline" / "matrix.yaml").read_text()
    assert examples.count(f"fingerprint: {fprs[0]}") == 2


def test_unreachable_repository_is_retried_then_named(tmp_path: Path) -> None:
    with serve(tmp_path, port=0) as url:
        pass  # the port is free again: nothing listens there
    with pytest.raises(VendorRepoError, match=rf"cannot fetch {url}/key.asc: .*after 3 attempts"):
        download(f"{url}/key.asc", backoff=0.01)
