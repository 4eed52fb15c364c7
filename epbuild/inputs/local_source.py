"""`invoke build --source COMPONENT=PATH`: a component built from a local working tree, uncommitted changes
included (as vLLM's reference builds from a local checkout). The tree is copied into build/sources/ (what git
would add: tracked and untracked files, not ignored ones, no .git), named after a digest of its content, which
the content key covers. The image records the component as dirty, and `publish` refuses it."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from epbuild.inputs.git_mirrors import GIT_ENV
from epbuild.util.commands import query
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import SOURCES_DIR


class LocalSourceError(EpbuildError):
    pass


@dataclass(frozen=True)
class LocalTree:
    component: str
    path: Path
    """The working tree given on the command line."""
    digest: str
    """sha256 over every file's path, mode and content."""
    head: str | None
    """The commit the working tree is based on, when it is a git checkout."""
    export: Path

    @property
    def ref(self) -> str:
        return local_ref(self.digest, self.head)


def parse(items: list[str], components: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise LocalSourceError(f"--source takes COMPONENT=PATH, got {item!r}")
        if name not in components:
            raise LocalSourceError(f"--source {item}: no component {name!r}; the matrix has {', '.join(components)}")
        folder = Path(path).expanduser().absolute()
        if not folder.is_dir():
            raise LocalSourceError(f"--source {item}: {folder} is not a folder")
        out[name] = folder
    return out


def _files(tree: Path) -> list[Path]:
    """The files git would add (uncommitted and untracked included, ignored excluded); every file when the folder
    is no git checkout. Submodule checkouts are walked whole, minus their .git."""
    proc = query(["git", "-C", str(tree), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                 env=GIT_ENV)
    if proc.returncode != 0 or not (tree / ".git").exists():
        listed = [p.relative_to(tree) for p in tree.rglob("*") if ".git" not in p.relative_to(tree).parts]
    else:
        listed = [Path(p) for p in proc.stdout.split("\0") if p]
    out: set[Path] = set()
    for rel in listed:
        full = tree / rel
        if full.is_dir() and not full.is_symlink():
            out.update(p.relative_to(tree) for p in full.rglob("*")
                       if ".git" not in p.relative_to(full).parts and (p.is_file() or p.is_symlink()))
        elif full.is_file() or full.is_symlink():  # a deleted tracked file is listed but gone: skip it
            out.add(rel)
    return sorted(out)


def _digest(component: str, tree: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for rel in files:
        full = tree / rel
        try:
            if full.is_symlink():
                kind, data = "link", os.readlink(full).encode()
            else:
                kind, data = oct(full.stat().st_mode & 0o111), full.read_bytes()
        except OSError as exc:  # unreadable, vanished while read, or a file the kernel serves (EINVAL on read)
            raise LocalSourceError(f"--source {component}={tree}: cannot read {rel}: {exc.strerror or exc}") from None
        h.update(f"{rel.as_posix()}\0{kind}\0".encode() + hashlib.sha256(data).digest())
    return "sha256:" + h.hexdigest()


def local_ref(digest: str, head: str | None = None) -> str:
    """What a local tree's export (content alone) and prepared inputs (scm version, git directory, wheelhouse,
    crates: content and HEAD, which the version reads) are named after, where a pinned tree's are named after its
    commit."""
    return "local-" + digest.removeprefix("sha256:")[:16] + (f"-g{head[:12]}" if head else "")


def export(component: str, tree: Path, root: Path, *, copy: bool = True) -> LocalTree:
    """The tree, copied into build/sources/ (unless `copy` is false: a dry run names the folder it would fill)."""
    try:
        files = _files(tree)
    except OSError as exc:  # a folder removed, or unreadable, while it is walked
        raise LocalSourceError(f"--source {component}={tree}: cannot list {exc.filename}: {exc.strerror}") from None
    if not files:
        raise LocalSourceError(f"--source {component}={tree}: the folder has no files")
    digest = _digest(component, tree, files)
    dest = root / SOURCES_DIR / f"{component}-{local_ref(digest)}"
    if copy and not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for rel in files:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(tree / rel, target, follow_symlinks=False)
                except OSError as exc:
                    raise LocalSourceError(f"--source {component}={tree}: cannot copy {rel}: {exc.strerror or exc}"
                                           ) from None
            tmp.rename(dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return LocalTree(component, tree, digest, checkout_head(tree), dest)


def checkout_head(tree: Path) -> str | None:
    """The commit a git checkout's HEAD names, when `tree` is the top of one (a folder inside another checkout is
    no checkout of its own: setuptools-scm refuses it too); None otherwise."""
    top = query(["git", "-C", str(tree), "rev-parse", "--show-toplevel"], env=GIT_ENV)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != tree.resolve():
        return None
    return query(["git", "-C", str(tree), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
                 env=GIT_ENV).stdout.strip() or None
