"""Reading Debian repository metadata with python-debian (deb822: Release, Packages, Depends), picking a package at a
version, and gpg's colon listing of a key's fingerprints."""

from __future__ import annotations

from debian.deb822 import Packages, PkgRelation, Release

Entry = dict[str, str]


def parse_stanza(text: str) -> Entry:
    """The first deb822 paragraph of `text` (a Release file, clear-signed or not), field -> value as written (a
    multi-line value keeps its lines)."""
    release = Release(text)
    return {field: release.get_as_string(field) for field in release}


def parse_index(text: str) -> list[Entry]:
    """Every paragraph of a Packages index."""
    return [dict(paragraph) for paragraph in Packages.iter_paragraphs(text, use_apt_pkg=False)]


def release_sha256(release: str) -> dict[str, tuple[str, int]]:
    """Release's `SHA256:` list: path -> (sha256, size)."""
    out: dict[str, tuple[str, int]] = {}
    for item in Release(release).get("SHA256", []):
        if str(item.get("size", "")).isdigit():
            out[item["name"]] = (item["sha256"].lower(), int(item["size"]))
    return out


def _matches(entry: Entry, name: str, arches: tuple[str, ...]) -> bool:
    return entry.get("Package") == name and entry.get("Architecture") in arches


def versions(index: list[Entry], name: str, arches: tuple[str, ...]) -> list[str]:
    return sorted({e.get("Version", "?") for e in index if _matches(e, name, arches)})


def pick(index: list[Entry], name: str, version: str, arches: tuple[str, ...]) -> Entry | None:
    """The index entry of `name` at exactly `version` (amd64 preferred over all), or None."""
    found = [e for e in index if _matches(e, name, arches) and e.get("Version") == version]
    found.sort(key=lambda e: arches.index(e["Architecture"]))
    return found[0] if found else None


def dependency_names(entry: Entry) -> list[str]:
    """Every package name in Pre-Depends and Depends (each alternative of an `a | b` group, `name:any` as name)."""
    return [alternative["name"]
            for field in ("Pre-Depends", "Depends") if entry.get(field, "").strip()
            for group in PkgRelation.parse_relations(entry[field])
            for alternative in group]


def unpinned_dependencies(index: list[Entry], entry: Entry, pinned: set[str]) -> list[str]:
    """Dependencies of `entry` that the vendor's own repository carries but the matrix does not pin: the build
    installs only pinned .debs, so those would be missing (or come from elsewhere at another version)."""
    carried = {e.get("Package") for e in index}
    return sorted({n for n in dependency_names(entry) if n in carried and n not in pinned})


def primary_fingerprints(colons: str) -> list[str]:
    """The primary keys' fingerprints in `gpg --with-colons` output (the `fpr` line after each `pub`)."""
    out: list[str] = []
    after_pub = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            after_pub = True
        elif fields[0] == "fpr" and after_pub and len(fields) > 9:
            out.append(fields[9].upper())
            after_pub = False
        elif fields[0] in ("sub", "sec", "ssb"):
            after_pub = False
    return out
