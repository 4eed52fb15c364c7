"""A stand-in's overlay commits: the component folder's fixture@<key>/ makes a commit `key` on top of the pinned
one. It holds whole files that replace or add, and unified diffs named `*.patch` (`git diff` against fixture/)
that `git apply` applies to the pinned files, so an overlay carries only the lines it changes; its README.md only
explains the overlay."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from epbuild.offline.gitrepo import _Entry, _git_env, _mode_for, _read_tree
from epbuild.offline.settings import OfflineError, _run

PATCH_SUFFIX = ".patch"
_PATCHED_PATH = re.compile(rb"^(?:---|\+\+\+) (?:a|b)/(\S+)", re.MULTILINE)


def _patched(folder: Path, patch: _Entry, tree: Sequence[_Entry]) -> list[_Entry]:
    """The files ``patch`` changes or adds, as they are after `git apply` on the pinned ``tree``."""
    by_path = {e.path: e for e in tree}
    touched = sorted({m.decode() for m in _PATCHED_PATH.findall(patch.data)})
    if not touched:
        raise OfflineError(f"{folder / patch.path}: not a unified diff with a/ and b/ paths (make it with git diff)")
    with tempfile.TemporaryDirectory(prefix="epbuild-overlay-") as tmp:
        root = Path(tmp)
        for path in touched:
            if path in by_path:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(by_path[path].data)
        try:
            _run(["git", "apply", "--whitespace=nowarn", folder / patch.path], env=_git_env(), cwd=root,
                 capture=True)
        except OfflineError as exc:
            raise OfflineError(f"{folder / patch.path} does not apply to {folder.name.split('@')[0]}/: {exc}") from None
        out = []
        for path in touched:
            if (root / path).is_file():
                data = (root / path).read_bytes()
                out.append(_Entry(path, by_path[path].mode if path in by_path else _mode_for(data), data))
        return out


def overlays(fixture: Path, tree: Sequence[_Entry]) -> list[tuple[str, list[_Entry]]]:
    """Each fixture@<key>/ next to ``fixture`` as (key, the files its commit changes), whole files first, then
    what its patches make of the pinned ``tree``."""
    out = []
    for folder in sorted(fixture.parent.glob(f"{fixture.name}@*")):
        entries = [e for e in _read_tree(folder) if e.path != "README.md"]
        files = {e.path: e for e in entries if not e.path.endswith(PATCH_SUFFIX)}
        for patch in (e for e in entries if e.path.endswith(PATCH_SUFFIX)):
            for changed in _patched(folder, patch, tree):
                if changed.path in files:
                    raise OfflineError(f"{folder}: {changed.path} is both a whole file and patched")
                files[changed.path] = changed
        out.append((folder.name.split("@", 1)[1], [files[p] for p in sorted(files)]))
    return out
