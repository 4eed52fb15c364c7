"""Deterministic bare git repositories: fixed identity, dates and modes, written with git fast-import, so
the same files always give the same commit hashes (a matrix can pin them), installed atomically with a stamp."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epbuild.offline.settings import (
    _EPOCH,
    _IDENT,
    _SKIP_DIRS,
    _SKIP_SUFFIXES,
    _SKIP_TOP_DIRS,
    GENERATOR_VERSION,
    STAMP_FILE,
    OfflineError,
    _run,
    _sha256,
)
from epbuild.util.commands import query

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class FixtureRepo:
    """A generated bare repo: ``commits`` maps pinned/moved/broken to commit hashes."""

    name: str
    path: Path
    commits: dict[str, str] = field(default_factory=dict)
    tag: str | None = None



@dataclass(frozen=True)
class _Entry:
    path: str
    mode: str  # 100644, 100755, 120000 (symlink) or 160000 (gitlink: data is the commit hash)
    data: bytes


@dataclass(frozen=True)
class _Commit:
    key: str  # pinned, moved, broken, or an overlay's name
    message: str
    changes: tuple[_Entry, ...]  # whole tree for the first commit, changed files after
    parent: str | None = None  # the key of the parent commit; None: the commit before it



def _git_env() -> dict[str, str]:
    """An environment where no user or system git config can change what gets written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": _IDENT[0],
            "GIT_AUTHOR_EMAIL": _IDENT[1],
            "GIT_COMMITTER_NAME": _IDENT[0],
            "GIT_COMMITTER_EMAIL": _IDENT[1],
            "LC_ALL": "C",
            "TZ": "UTC",
        }
    )
    return env


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    out = _run(["git", "--git-dir", repo, *args], env=_git_env(), stdin=stdin, capture=True)
    return out.stdout.decode().strip()



def _is_skipped(rel: Path) -> bool:
    # Build outputs only at the top (vLLM keeps real sources in requirements/build/).
    return rel.parts[0] in _SKIP_TOP_DIRS or any(p in _SKIP_DIRS or p.endswith(_SKIP_SUFFIXES) for p in rel.parts)


def _mode_for(data: bytes) -> str:
    # Fixed rule instead of the checkout's permission bits (which depend on umask and tools).
    return "100755" if data.startswith(b"#!") else "100644"


def _read_tree(src: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if _is_skipped(rel):
            continue
        if path.is_symlink():
            entries.append(_Entry(rel.as_posix(), "120000", os.readlink(path).encode()))
        elif path.is_file():
            data = path.read_bytes()
            entries.append(_Entry(rel.as_posix(), _mode_for(data), data))
    if not entries:
        raise OfflineError(f"fixture {src} is empty")
    return entries


def _submodules(tree: list[_Entry]) -> list[tuple[str, str]]:
    """(path, url) of each submodule named in .gitmodules."""
    gitmodules = next((e for e in tree if e.path == ".gitmodules"), None)
    if gitmodules is None:
        return []
    paths: dict[str, str] = {}
    urls: dict[str, str] = {}
    for line in gitmodules.data.decode().splitlines():
        m = re.match(r'\s*\[submodule\s+"([^"]+)"\]', line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"\s*(path|url)\s*=\s*(\S+)", line)
        if m:
            (paths if m.group(1) == "path" else urls)[current] = m.group(2)
    return [(paths[name], urls[name]) for name in sorted(paths)]


def _submodule_repo_name(url: str) -> str:
    m = re.fullmatch(r"\.\./([A-Za-z0-9._-]+)\.git", url)
    if not m:
        raise OfflineError(f"fixture submodule url {url!r} must be relative: ../<name>.git")
    return m.group(1)


def _quote_path(path: str) -> str:
    if any(c in path for c in '"\\\n') or not path.isprintable():
        return json.dumps(path)  # C-style quoting, which fast-import accepts
    return path


def _fast_import_stream(commits: Sequence[_Commit], refs: Mapping[str, str]) -> bytes:
    out = io.BytesIO()
    name, email = _IDENT
    marks = {c.key: n for n, c in enumerate(commits, start=1)}
    for n, commit in enumerate(commits, start=1):
        when = f"{_EPOCH + (n - 1) * 86400} +0000"
        msg = commit.message.encode()
        out.write(f"commit refs/heads/main\nmark :{n}\n".encode())
        out.write(f"author {name} <{email}> {when}\ncommitter {name} <{email}> {when}\n".encode())
        out.write(b"data %d\n%s\n" % (len(msg), msg))
        if n > 1:
            parent = n - 1 if commit.parent is None else marks[commit.parent]
            out.write(f"from :{parent}\n".encode())
        for e in sorted(commit.changes, key=lambda e: e.path):
            if e.mode == "160000":
                out.write(f"M 160000 {e.data.decode()} {_quote_path(e.path)}\n".encode())
            else:
                out.write(f"M {e.mode} inline {_quote_path(e.path)}\n".encode())
                out.write(b"data %d\n" % len(e.data))
                out.write(e.data + b"\n")
    for ref, key in refs.items():
        mark = next(i for i, c in enumerate(commits, start=1) if c.key == key)
        out.write(f"reset {ref}\nfrom :{mark}\n\n".encode())
    out.write(b"done\n")
    return out.getvalue()


def _build_bare_repo(path: Path, commits: Sequence[_Commit], refs: Mapping[str, str]) -> dict[str, str]:
    """Create bare repo ``path`` holding ``commits`` (a linear history); return key -> hash."""
    _run(["git", "init", "-q", "--bare", "--initial-branch=main", str(path)], env=_git_env())
    marks = path / "epbuild-marks"
    _git(path, "fast-import", "--quiet", "--done", f"--export-marks={marks}", stdin=_fast_import_stream(commits, refs))
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    marks.unlink()
    hashes = {c.key: by_mark[f":{n}"] for n, c in enumerate(commits, start=1)}
    # Serve any commit by hash (smart protocols), and the dumb http protocol too.
    for key in (
        "uploadpack.allowAnySHA1InWant",
        "uploadpack.allowReachableSHA1InWant",
        "uploadpack.allowTipSHA1InWant",
        "uploadpack.allowFilter",
    ):
        _git(path, "config", key, "true")
    (path / "git-daemon-export-ok").touch()
    _git(path, "update-server-info")
    return hashes


def _stamp_ok(repo: Path, digest: str) -> dict[str, Any] | None:
    try:
        stamp = json.loads((repo / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("digest") != digest or not isinstance(stamp.get("commits"), dict):
        return None
    for sha in stamp["commits"].values():
        check = query(["git", "--git-dir", str(repo), "cat-file", "-e", f"{sha}^{{commit}}"], env=_git_env(),
                      whole_env=True)
        if check.returncode != 0:
            return None
    return stamp


def _install_repo(
    dest: Path, name: str, digest: str, commits: Sequence[_Commit], refs: Mapping[str, str], tag: str | None = None
) -> FixtureRepo:
    """Build ``<dest>/<name>.git`` in a temp dir and rename it into place, unless up to date."""
    final = dest / f"{name}.git"
    stamp = _stamp_ok(final, digest)
    if stamp is not None:
        log.info("fixture repo %s up to date", final)
        return FixtureRepo(name, final, dict(stamp["commits"]), stamp.get("tag"))
    log.info("building fixture repo %s", final)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=f".{name}.git.tmp-"))
    try:
        repo = tmp / f"{name}.git"
        hashes = _build_bare_repo(repo, commits, refs)
        # The stamp is written last: a repo without a matching stamp is never taken as good.
        (repo / STAMP_FILE).write_text(
            json.dumps({"digest": digest, "commits": hashes, "tag": tag}, indent=2, sort_keys=True) + "\n"
        )
        if final.exists():
            old = tmp / "old.git"
            os.rename(final, old)
        os.rename(repo, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return FixtureRepo(name, final, hashes, tag)


def _digest(*parts: object) -> str:
    return _sha256(json.dumps([GENERATOR_VERSION, *parts], sort_keys=True, default=str).encode())


