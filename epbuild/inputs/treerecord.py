"""The record of an exported source tree, kept beside it, and the check that the tree still is what was exported.

The record lists every file and symlink with its size, mode, mtime and content hash, and a tree hash over them.
Checking is cheap the way git's index is: a file whose size, mode and mtime are unchanged is taken as unchanged,
and only a file whose stat differs is hashed again (a `touch` costs one hash; an edit, a removed or an added file
fails the check). The record lives outside the tree so that the tree BuildKit receives is exactly the commit's.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from epbuild.util import atomicfs

FileEntry = tuple[int, int, int, str]
"""(size, mode, mtime_ns, sha256 of the content or of the link target)"""


def _content_hash(path: Path, st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return hashlib.sha256(os.readlink(path).encode()).hexdigest()
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _walk(root: Path) -> dict[str, os.stat_result]:
    """Every file and symlink under root by its relative path (folders are implied by them)."""
    found: dict[str, os.stat_result] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = os.lstat(path)
    return found


def tree_hash(files: Mapping[str, FileEntry]) -> str:
    lines = "".join(f"{oct(mode)} {digest} {path}\n" for path, (_, mode, _, digest) in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass
class TreeRecord:
    identity: dict[str, object]
    """What the tree was exported as (component, commit, URL, tag): a record for other inputs does not count."""
    files: dict[str, FileEntry]
    restated: bool = False
    """Set when a check found files touched but unchanged, and refreshed their stat (worth saving)."""

    @classmethod
    def of(cls, root: Path, identity: dict[str, object]) -> TreeRecord:
        files = {rel: (st.st_size, st.st_mode, st.st_mtime_ns, _content_hash(root / rel, st))
                 for rel, st in _walk(root).items()}
        return cls(identity, files)

    @property
    def tree(self) -> str:
        return tree_hash(self.files)

    def save(self, path: Path) -> None:
        doc = {**self.identity, "tree_sha256": self.tree, "files": self.files}
        atomicfs.write_text(path, json.dumps(doc, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TreeRecord | None:
        """The record at path, or None when it is missing, unreadable or inconsistent with its own tree hash."""
        try:
            doc = json.loads(path.read_text())
            files = {str(rel): (int(a), int(b), int(c), str(d)) for rel, (a, b, c, d) in doc.pop("files").items()}
            recorded = doc.pop("tree_sha256")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return cls(doc, files) if tree_hash(files) == recorded else None

    def differences(self, root: Path) -> list[str]:
        """How the tree at root differs from the record (empty: it is the exported tree). Files whose stat moved
        but whose content did not get their stat refreshed in the record (save it to keep the check cheap)."""
        if not root.is_dir():
            return [f"{root} is missing"]
        found = _walk(root)
        problems = [f"{rel}: missing" for rel in sorted(set(self.files) - set(found))]
        problems += [f"{rel}: not exported" for rel in sorted(set(found) - set(self.files))]
        for rel in sorted(set(found) & set(self.files)):
            st, (size, mode, mtime, digest) = found[rel], self.files[rel]
            if (st.st_size, st.st_mode, st.st_mtime_ns) == (size, mode, mtime):
                continue
            if st.st_mode != mode or _content_hash(root / rel, st) != digest:
                problems.append(f"{rel}: changed since the export")
            else:
                self.files[rel] = (st.st_size, st.st_mode, st.st_mtime_ns, digest)
                self.restated = True
        return problems
