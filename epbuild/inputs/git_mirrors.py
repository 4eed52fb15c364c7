"""The bare mirror of each repository URL (build/cache/git/), fetched into by commit: a commit fetched by its full
name gets a ref, so `git gc` never prunes a pinned commit; transient network errors are retried with backoff, and
no remote can make a fetch wait forever (ssh in batch mode, curl's low-speed limit, a fetch time limit). A mirror
is created under a temporary name and renamed in under its file lock, so a killed run leaves nothing a later run
takes as a mirror (what it leaves is removed under the same lock)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock

from epbuild.inputs.source_requests import SourceError, SourceRequest
from epbuild.model.pins import SourcePin
from epbuild.util import atomicfs, timeouts
from epbuild.util.commands import CommandFailed, CommandTimedOut, Runner, failure_reason, shell_line

log = logging.getLogger(__name__)

PIN_REFS = "refs/epbuild/pins/"
"""Where a mirror keeps each commit fetched by its full name: a ref, so `git gc` never prunes a pinned commit."""
TRANSIENT = re.compile(
    r"Could not resolve host|Connection (timed out|refused|reset)|early EOF|RPC failed|remote end hung up|"
    r"Operation timed out|TLS|unexpected disconnect|Temporary failure|"
    # git over https (curl's words): a server error or rate limit, a dropped or stalled transfer.
    r"The requested URL returned error: (5\d\d|429)|Failed to connect|Couldn't connect|Empty reply from server|"
    r"Operation too slow|transfer closed|Recv failure|Send failure|SSL|gnutls|HTTP/2 stream|banner exchange",
    re.IGNORECASE,
)
# Never prompt for credentials (a missing repository must fail, not hang), and ignore the machine's system config.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
LOW_SPEED_BYTES = 1024

def network_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a fetch adds to GIT_ENV so that no remote makes it wait forever: ssh in batch mode (no password or
    host-key question, which nobody would answer) with keep-alives, and curl's low-speed limit for https (a
    server that accepts and then sends nothing is dropped). A GIT_SSH_COMMAND of the user's is kept, with ours
    appended (ssh takes the first value given for an option, so theirs win)."""
    ssh = environ.get("GIT_SSH_COMMAND") or "ssh"
    return {
        **GIT_ENV,
        "GIT_SSH_COMMAND": f"{ssh} -o BatchMode=yes -o ConnectTimeout={timeouts.SSH_CONNECT.seconds():.0f} "
                           "-o ServerAliveInterval=15 -o ServerAliveCountMax=4",
        "GIT_HTTP_LOW_SPEED_LIMIT": str(LOW_SPEED_BYTES),
        "GIT_HTTP_LOW_SPEED_TIME": f"{timeouts.GIT_LOW_SPEED.seconds():.0f}",
    }


class GitMirrors:
    """Bare mirrors under <root>/build/cache/git/, one per repository URL."""

    def __init__(self, root: Path, runner: Runner, *, retries: int = 4, backoff: float = 2.0) -> None:
        self.root = root
        self.git_dir = root / "build" / "cache" / "git"
        self.runner = runner
        self.retries = retries
        self.backoff = backoff

    def mirror_for(self, url: str) -> Path:
        """The bare mirror of `url` in the cache (it exists once the URL was fetched)."""
        return self._mirror_path(url)

    def fetch_refs(self, request: SourceRequest, wants: list[str]) -> Path:
        """Fetches `wants` (refspecs or commits) from the request's URL into its mirror; returns the mirror."""
        mirror = self._ensure_mirror(request.url)
        with FileLock(str(mirror) + ".lock"):
            self._fetch_with_retries(mirror, self._fetch_args(request), request, wants)
        return mirror

    def rev_parse(self, mirror: Path, rev: str) -> str | None:
        return self._rev_parse(mirror, rev)

    def history_with_tags(self, request: SourceRequest) -> Path:
        """The bare mirror holding the pin's whole history and every tag of the remote, for reading the version
        setuptools-scm would compute there (a fetch by commit brings the history but no tags)."""
        mirror = self._ensure_mirror(request.url)
        with FileLock(str(mirror) + ".lock"):
            self._fetch_commit(mirror, request)
            self._fetch_with_retries(mirror, self._fetch_args(request), request, ["+refs/tags/*:refs/tags/*"])
            commit = self._resolve(mirror, request.pin)
        assert commit is not None  # _fetch_commit raised otherwise
        return mirror

    def mirror_path(self, url: str) -> Path:
        """Where the bare mirror of `url` lives (it may not exist yet)."""
        return self._mirror_path(url)

    def _mirror_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1])[:40]
        return self.git_dir / f"{stem}-{digest}.git"

    def _ensure_mirror(self, url: str) -> Path:
        path = self._mirror_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            atomicfs.remove_leftovers(path.parent, f".{path.name}.")  # mirrors of killed runs, never renamed in
            if (path / "HEAD").exists():
                return path
            tmp = atomicfs.temp_dir(path.parent, f".{path.name}.")
            self.runner.record(shell_line(["git", "init", "--bare", "--quiet", str(path)], GIT_ENV))
            try:
                self._git(["init", "--bare", "--quiet", str(tmp)], record=False)
                tmp.rename(path)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp)
        return path

    @staticmethod
    def _fetch_args(request: SourceRequest) -> list[str]:
        args = ["fetch", "--quiet", "--no-write-fetch-head"]
        if request.sparse:
            args.append("--filter=blob:none")  # sparse: only the blobs under the sparse paths are read, by archive
        return args

    @staticmethod
    def _wants(pin: SourcePin) -> list[str]:
        """What to ask the remote for: a full commit by name; a tag; a short commit needs every branch and tag
        (a remote cannot be asked for an abbreviated name), and is then resolved locally."""
        if len(pin.commit) < 40:
            return ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        return [pin.commit, *([f"+refs/tags/{pin.tag}:refs/tags/{pin.tag}"] if pin.tag else [])]

    def _fetch_into(self, mirror: Path, request: SourceRequest) -> str:
        """_fetch_commit, then a ref on the commit (a commit fetched by name has none, and `git gc` would prune
        it); on failure the mirror is dropped again when it holds no ref at all (the first fetch from a URL
        failed), so a wrong URL leaves no empty mirror behind."""
        try:
            commit = self._fetch_commit(mirror, request)
            _clear_stale_git_locks(mirror)
            self._git(["-C", str(mirror), "update-ref", f"{PIN_REFS}{commit}", commit], record=False)
            return commit
        except BaseException:
            refs = self._git(["-C", str(mirror), "for-each-ref", "--count=1"], capture=True, check=False,
                             record=False)
            if refs.returncode == 0 and not refs.stdout.strip():
                shutil.rmtree(mirror)
            raise

    def _fetch_commit(self, mirror: Path, request: SourceRequest) -> str:
        pin = request.pin
        commit = self._resolve(mirror, pin)
        tag_known = pin.tag is None or self._rev_parse(mirror, f"refs/tags/{pin.tag}^{{commit}}") is not None
        if commit is None or not tag_known:
            self._fetch_with_retries(mirror, self._fetch_args(request), request, self._wants(pin))
            commit = self._resolve(mirror, pin)
        if commit is None:
            raise SourceError(
                f"{request.component}: {request.url} has no commit {pin.commit}"
                + (f" (tag {pin.tag})" if pin.tag else "")
                + "; check the pin in the matrix, or the mirror"
            )
        if pin.tag:
            tagged = self._rev_parse(mirror, f"refs/tags/{pin.tag}^{{commit}}")
            if tagged is None or not tagged.startswith(pin.commit):
                raise SourceError(
                    f"{request.component}: tag {pin.tag} of {request.url} is commit {tagged or '(missing)'}, "
                    f"but the matrix pins {pin.commit}"
                )
        return commit

    def _fetch_with_retries(self, mirror: Path, args: list[str], request: SourceRequest, wants: list[str]) -> None:
        """Fetches, retrying what a network hiccup explains (git://, ssh:// and https:// alike) with backoff; the
        error keeps every line of git's reason that is not boilerplate."""
        _clear_stale_git_locks(mirror)
        for attempt in range(1, self.retries + 1):
            try:
                self.runner.run(["git", "-C", str(mirror), *args, request.url, *wants], env=network_env(),
                                capture=True, timeout=timeouts.GIT_FETCH.seconds(),
                                timeout_setting=timeouts.GIT_FETCH.env)
                return
            except CommandTimedOut as exc:
                raise SourceError(f"{request.component}: cannot fetch {request.pin.commit} from {request.url}: "
                                  f"{exc}") from None
            except CommandFailed as exc:
                transient = bool(TRANSIENT.search(exc.output))
                reason = failure_reason(exc.output) or f"exit {exc.returncode}"
                if not transient or attempt == self.retries:
                    if "not our ref" in exc.output or "couldn't find remote ref" in exc.output:
                        raise SourceError(f"{request.component}: {request.url} has no {request.pin.commit} "
                                          f"({reason}); check the pin in the matrix, or the mirror") from None
                    if "does not appear to be a git repository" in exc.output:
                        reason = f"repository not found or unreachable ({reason})"
                    raise SourceError(
                        f"{request.component}: cannot fetch {request.pin.commit} from {request.url}: {reason}"
                        + (f" (after {attempt} attempts)" if transient else "")
                    ) from None
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("%s: transient fetch error (%s); retrying in %.0fs", request.component, reason, delay)
                time.sleep(delay)

    def _resolve(self, mirror: Path, pin: SourcePin) -> str | None:
        full = self._rev_parse(mirror, f"{pin.commit}^{{commit}}")
        return full if full and full.startswith(pin.commit) else None

    def _rev_parse(self, mirror: Path, rev: str) -> str | None:
        proc = self._git(["-C", str(mirror), "rev-parse", "--verify", "--quiet", rev], capture=True, check=False,
                         record=False)
        return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None

    def _git(self, args: list[str], *, capture: bool = False, check: bool = True,
             record: bool = True) -> subprocess.CompletedProcess[str]:
        return self.runner.run(["git", *args], env=GIT_ENV, capture=capture, check=check, record=record)


def _clear_stale_git_locks(mirror: Path) -> None:
    """Removes the `*.lock` files a git process killed inside `mirror` left (packed-refs.lock, shallow.lock, a
    ref's lock): git refuses to run while one exists ("remove the file manually to continue"). Called only with
    the mirror's own file lock held, so no other run's git is working in it."""
    for stale in mirror.rglob("*.lock"):
        log.info("%s: removing %s, left by a git process that was stopped", mirror.name, stale.relative_to(mirror))
        stale.unlink(missing_ok=True)
