"""A scratch clone of a stand-in repository (epbuild/offline) on which a benchmark or test commits pins no build
has seen: each commit tagged (so a fetch reaches it) and a distinct commit time (the export carries commit times
as file mtimes, and BuildKit's sync of a local context skips a file whose size and mtime did not change)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from epbuild.offline import REPOS_DIR

_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost", "PATH": "/usr/bin:/bin"}


class StandInWork:
    def __init__(self, component: str, folder: Path) -> None:
        self.path = folder / f"{component}-work"
        self.pinned = json.loads((REPOS_DIR / "commits.json").read_text())[component]["commits"]["pinned"]
        self._commits = 0
        subprocess.run(["git", "clone", "-q", str(REPOS_DIR / f"{component}.git"), str(self.path)], check=True,
                       env=_ENV)
        self.git("checkout", "-q", self.pinned)

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, env=_ENV, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, message: str) -> str:
        """Commits every change (new files too) and returns the commit."""
        n = self._commits
        self._commits += 1
        stamp = f"{int(time.time()) + 10 * n} +0000"
        self.git("add", "-A")
        subprocess.run(["git", "-C", str(self.path), "commit", "-qm", message], check=True,
                       env={**_ENV, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
        self.git("tag", f"bench-{n}")
        return self.git("rev-parse", "HEAD")

    def appending_commits(self, sources: Sequence[str], line: Callable[[int], str], who: str) -> list[str]:
        """One commit per source, each on the last, appending `line(n)` (a declaration no build has seen: callers
        put the time in it) to the n-th source."""
        commits = []
        for n, source in enumerate(sources):
            path = self.path / source
            path.write_text(path.read_text() + "\n" + line(n) + "\n")
            commits.append(self.commit(f"{who}: a change to {source}"))
        return commits
