"""What `git rev-parse --short HEAD` answers in a checkout of the pin, handed to a stage whose exported tree has no
`.git`: a git directory holding only `HEAD` (the pin's full commit) and `core.abbrev` (the length git gives that
commit in the fetched history), which the stage names as `GIT_DIR`.

Why: DeepEP's setup.py (ROCm/DeepEP setup.py@a9ea9774) versions itself `"1.0.0" + "+" + $(git rev-parse --short
HEAD)` and silently drops the suffix when git fails, so an exported tree builds plain 1.0.0. `rev-parse` reads
only HEAD and the abbreviation length, no objects; git skips its ownership check when GIT_DIR is given.

A component built from a local checkout (`--source`) gets that checkout's HEAD and abbreviation, as its setup.py
would read them there; a local tree that is no git checkout gets a git directory with no commit (an unborn
branch), where `git rev-parse` fails as it does outside any checkout, so the setup.py takes its own fallback.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from epbuild.util.atomicfs import filled_dir
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import GIT_HEAD_DIR


class GitHeadError(EpbuildError):
    pass


def git_head_dir(component: str, commit: str) -> str:
    return f"{GIT_HEAD_DIR}/{component}-{commit}"


def _git(repo: Path, *args: str, where: str, work_tree: bool = False) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(["git", "-C" if work_tree else "--git-dir", str(repo), *args], capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        raise GitHeadError(f"{where}: git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def short_revision(mirror: Path, commit: str, *, where: str) -> tuple[str, str]:
    """The pin's full commit and its short form as git abbreviates it in `mirror` (the fetched history)."""
    full = _git(mirror, "rev-parse", "--verify", f"{commit}^{{commit}}", where=where)
    return full, _git(mirror, "rev-parse", "--short", full, where=where)


def checkout_revision(tree: Path, *, where: str) -> tuple[str, str]:
    """HEAD of the local checkout `tree`, full and as git abbreviates it there."""
    full = _git(tree, "rev-parse", "--verify", "HEAD^{commit}", where=where, work_tree=True)
    return full, _git(tree, "rev-parse", "--short", full, where=where, work_tree=True)


UNBORN = "ref: refs/heads/local"
"""HEAD of a git directory without commits: `git rev-parse HEAD` fails there."""


def write(root: Path, component: str, commit: str, full: str | None, short: str = "") -> Path:
    """The git directory the stage mounts (temp + rename: a half-written one is never there). `commit` names the
    folder (a pin's commit, or a local tree's ref); `full` None: a directory without commits."""
    dest = root / git_head_dir(component, commit)
    if (dest / "HEAD").is_file():
        return dest
    with filled_dir(dest, f".{component}-") as tmp:
        for sub in ("objects", "refs"):
            (tmp / sub).mkdir()
            (tmp / sub / ".keep").touch()  # an empty folder may not survive the context transfer
        (tmp / "HEAD").write_text((full or UNBORN) + "\n")
        abbrev = f"\tabbrev = {len(short)}\n" if short else ""
        (tmp / "config").write_text(f"[core]\n\trepositoryformatversion = 0\n\tbare = true\n{abbrev}")
    return dest
