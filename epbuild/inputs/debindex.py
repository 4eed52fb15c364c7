"""Reading Debian repository metadata: deb822 stanzas (Release, Packages), Release's SHA256 list, picking a
package at a version, and gpg's colon listing of a key's fingerprints."""

from __future__ import annotations

import re

DEPENDENCY_NAME = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)")


def parse_stanza(text: str) -> dict[str, str]:
    """One deb822 paragraph: `Field: value` lines, continuation lines (leading space) appended with a newline."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last is not None:
            fields[last] += "\n" + line.strip()
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last] = value.strip()
    return fields


def parse_index(text: str) -> list[dict[str, str]]:
    """Every paragraph of a Packages index."""
    return [parse_stanza(block) for block in re.split(r"\n\s*\n", text) if block.strip()]


def release_sha256(release: str) -> dict[str, tuple[str, int]]:
    """Release's `SHA256:` list: path -> (sha256, size)."""
    out: dict[str, tuple[str, int]] = {}
    for line in parse_stanza(release).get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            out[parts[2]] = (parts[0].lower(), int(parts[1]))
    return out


def _matches(entry: dict[str, str], name: str, arches: tuple[str, ...]) -> bool:
    return entry.get("Package") == name and entry.get("Architecture") in arches


def versions(index: list[dict[str, str]], name: str, arches: tuple[str, ...]) -> list[str]:
    return sorted({e.get("Version", "?") for e in index if _matches(e, name, arches)})


def pick(index: list[dict[str, str]], name: str, version: str, arches: tuple[str, ...]) -> dict[str, str] | None:
    """The index entry of `name` at exactly `version` (amd64 preferred over all), or None."""
    found = [e for e in index if _matches(e, name, arches) and e.get("Version") == version]
    found.sort(key=lambda e: arches.index(e["Architecture"]))
    return found[0] if found else None


def dependency_names(entry: dict[str, str]) -> list[str]:
    """Every package name in Depends and Pre-Depends (each alternative of an `a | b` group)."""
    names = []
    for field in ("Pre-Depends", "Depends"):
        for group in entry.get(field, "").split(","):
            for alternative in group.split("|"):
                match = DEPENDENCY_NAME.match(alternative.split(":", 1)[0])
                if match:
                    names.append(match.group(1))
    return names


def unpinned_dependencies(index: list[dict[str, str]], entry: dict[str, str], pinned: set[str]) -> list[str]:
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
