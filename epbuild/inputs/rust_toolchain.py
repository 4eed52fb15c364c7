"""Whether a base's Rust toolchain satisfies the toolchain a pin asks for in its rust-toolchain.toml, decided
before any stage runs: an older rustc would fail deep inside cargo, after every earlier stage was built."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

TOOLCHAIN_FILES = ("rust-toolchain.toml", "rust-toolchain")
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def channel(tree: Path) -> tuple[str, str] | None:
    """The channel the tree's toolchain file names and that file's name; None when it has none (any toolchain)."""
    for name in TOOLCHAIN_FILES:
        path = tree / name
        if not path.is_file():
            continue
        text = path.read_text()
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return text.strip(), name  # the legacy one-line form: just the channel
        value = data.get("toolchain", {}).get("channel")
        return (str(value), name) if value else None
    return None


def _release(text: str) -> tuple[int, int, int] | None:
    match = _RELEASE.match(text)
    return (int(match[1]), int(match[2]), int(match[3] or 0)) if match else None


def problem(asked: str, provided: str | None) -> str | None:
    """Why a base whose rustc is `provided` (bases.<name>.rustc_version; None: no toolchain) cannot build for the
    channel `asked`, or None. A release channel ("1.85", "1.85.1") needs that release or a newer one; any other
    channel (nightly-2026-03-10, beta) only the same channel."""
    if provided is None:
        return f"it asks for Rust {asked}, and the base declares no Rust toolchain"
    wanted, have = _release(asked), _release(provided)
    if wanted is not None and have is not None:
        return None if have >= wanted else f"it asks for Rust {asked}, and the base's rustc is {provided}"
    if asked == provided:
        return None
    return f"it asks for the Rust toolchain {asked}, which the base's rustc {provided} is not"
