"""Fetches each component's repository at its pinned commit and exports a clean tree for its named context.

The cache is two-level: a bare mirror per repository URL (build/cache/git/) and an exported tree per
component and pin (build/sources/<component>-<ref>/, with its record <component>-<ref>.export.json beside it).
Both are written under a temporary name and swapped into place under a file lock, and the record is written
last and removed first, so an interrupted run never leaves an entry a later run would take as good, and two
runs can share the cache. A cached tree is reused only while it matches its record (treerecord.py); what
killed runs left (temporary trees, mirrors never fetched into) is removed under the same locks. Once a tree
is exported, builds need no network for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from epbuild import atomicfs
from epbuild.bakefile import source_dir
from epbuild import timeouts
from epbuild.commands import CommandFailed, CommandTimedOut, Runner, failure_reason, shell_line
from epbuild.errors import EpbuildError
from epbuild.matrix import LoadedMatrix
from epbuild.pins import SourcePin
from epbuild.patterns import GIT_URL, REL_PATH
from epbuild.treerecord import TreeRecord

log = logging.getLogger(__name__)

RECORD_SUFFIX = ".export.json"
PIN_REFS = "refs/epbuild/pins/"
"""Where a mirror keeps each commit fetched by its full name: a ref, so `git gc` never prunes a pinned commit."""
MIRROR_ENV_PREFIX = "EPBUILD_MIRROR_"
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


class SourceError(EpbuildError):
    pass


@dataclass(frozen=True)
class SourceRequest:
    component: str
    pin: SourcePin
    url: str
    """The URL actually fetched: the matrix's, a mirror's, or a relative path resolved to an absolute one."""
    sparse: tuple[str, ...] = ()
    """The only folders exported (fetched blob-less): the component's sparse path, if its spec names one."""


@dataclass(frozen=True)
class ExportedSource:
    component: str
    commit: str
    path: Path
    cached: bool
    commit_time: int = 0
    """The commit's committer time (Unix seconds): the SOURCE_DATE_EPOCH of what is built from it."""


def mirror_overrides(cli: list[str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Per-component URL overrides: EPBUILD_MIRROR_<COMPONENT>=URL, then `--mirror component=URL` (wins)."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith(MIRROR_ENV_PREFIX) and value:
            out[key[len(MIRROR_ENV_PREFIX):].lower().replace("_", "-")] = value
    for item in cli:
        name, sep, url = item.partition("=")
        if not sep or not name:
            raise SourceError(f"--mirror takes COMPONENT=URL, got {item!r}")
        out[name] = url
    for name, url in out.items():
        if not GIT_URL.fullmatch(url):
            raise SourceError(f"mirror for {name}: {url!r} is not an allowed repository URL "
                              "(https://, ssh://, git://, git@host:path, file:///path, ./ or ../ path)")
    return out


def resolve_url(url: str, base: Path) -> str:
    """Paths relative to the matrix file (./x, ../x) become file:// URLs; real URLs pass through.
    (A bare path would do for a plain fetch, but git cannot name a partial-clone promisor after one.)"""
    if url.startswith(("./", "../")):
        return (base / url).resolve().as_uri()
    return url


def requests_for(matrix: LoadedMatrix, components: list[str], mirrors: Mapping[str, str]) -> list[SourceRequest]:
    pins = matrix.model.components.pins()
    unknown = sorted(set(mirrors) - set(pins))
    if unknown:
        raise SourceError(f"mirror given for unknown component(s) {', '.join(unknown)}; "
                          f"the matrix has {', '.join(pins)}")
    registry = matrix.model.registry
    return [
        SourceRequest(name, pins[name], resolve_url(mirrors.get(name, pins[name].repo), matrix.directory),
                      tuple(registry[name].sparse_paths(pins[name])))
        for name in components
    ]


class SourceCache:
    def __init__(self, root: Path, runner: Runner, *, retries: int = 4, backoff: float = 2.0) -> None:
        self.root = root
        self.git_dir = root / "build" / "cache" / "git"
        self.runner = runner
        self.retries = retries
        self.backoff = backoff
        self._scratch: Path | None = None
        """The tar file `git archive` writes during an export, beside the export's temporary folder."""

    # -- public -----------------------------------------------------------------------------------------
    def export(self, request: SourceRequest) -> ExportedSource:
        """The component's tree at its pin, fetched and exported if it is not cached yet."""
        dest = self.root / source_dir(request.component, request.pin.commit)
        if self.runner.dry_run:
            return self._plan(request, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest) + ".lock"):
            atomicfs.remove_leftovers(dest.parent, f".{dest.name}.")  # temporary trees of killed exports
            record = self._verified(dest, request.pin)
            if record is not None:
                if record.restated:
                    record.save(_record_path(dest))
                return ExportedSource(request.component, str(record.identity["commit"]), dest, cached=True)
            commit = self._export_fresh(request, dest)
        return ExportedSource(request.component, commit, dest, cached=False)

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

    # -- steps ------------------------------------------------------------------------------------------
    def _plan(self, request: SourceRequest, dest: Path) -> ExportedSource:
        """Prints what a real export runs and records, in the same order."""
        if self._verified(dest, request.pin) is not None:
            print(f"# {request.component}: {dest} is exported already; nothing to fetch")
        else:
            mirror = self._mirror_path(request.url)
            if not (mirror / "HEAD").exists():
                self.runner.record(shell_line(["git", "init", "--bare", "--quiet", str(mirror)], GIT_ENV))
            self.runner.record(shell_line(["git", "-C", str(mirror), *self._fetch_args(request), request.url,
                                           *self._wants(request.pin)], network_env()))
            self.runner.record(self._archive_line(mirror, request.pin.commit, dest, self._paths(request)))
            print(f"# {request.component}: then every submodule its .gitmodules lists, fetched and exported alike")
        return ExportedSource(request.component, request.pin.commit, dest, cached=False)

    @staticmethod
    def _paths(request: SourceRequest) -> list[str]:
        return list(request.sparse)

    @staticmethod
    def _archive_line(mirror: Path, commit: str, dest: Path, paths: list[str]) -> str:
        """The shell line an export amounts to (what replay.sh gets; Python extracts through a temp dir)."""
        archive = shell_line(["git", "-C", str(mirror), "archive", "--format=tar", commit,
                              *(["--", *paths] if paths else [])])
        return f"mkdir -p {shlex.quote(str(dest))} && {archive} | tar -x -C {shlex.quote(str(dest))}"

    def _export_fresh(self, request: SourceRequest, dest: Path) -> str:
        mirror = self._ensure_mirror(request.url)
        with FileLock(str(mirror) + ".lock"):
            commit = self._fetch_into(mirror, request)
        tmp = atomicfs.temp_dir(dest.parent, f".{dest.name}.")
        self._scratch = tmp.with_name(tmp.name + ".tar")
        try:
            paths = self._paths(request)
            self.runner.record(self._archive_line(mirror, commit, dest, paths))
            self._archive(mirror, commit, tmp, paths)
            self._submodules(mirror, commit, tmp, request, "", dest)
            record = TreeRecord.of(tmp, {"component": request.component, "commit": commit, "url": request.url,
                                         "tag": request.pin.tag})
            # dest, if any, failed its check: its record goes first, so no moment has a record beside a tree
            # that is not the recorded one.
            _record_path(dest).unlink(missing_ok=True)
            atomicfs.replace_dir(tmp, dest)
            record.save(_record_path(dest))
        finally:
            self._scratch = None
            if tmp.exists():
                shutil.rmtree(tmp)
        log.info("%s: exported %s at %s to %s", request.component, request.url, commit, dest)
        return commit

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

    def commit_time(self, request: SourceRequest, commit: str) -> int:
        """The commit's committer time, read from the local mirror (no network); 0 in a dry run."""
        if self.runner.dry_run:
            return 0
        mirror = self._mirror_path(request.url)
        if not (mirror / "HEAD").exists():  # a cached export whose mirror was removed: fetch the history again
            mirror = self.fetch_refs(request, [commit])
        proc = self._git(["-C", str(mirror), "show", "--no-patch", "--format=%ct", commit], capture=True,
                         check=False, record=False)
        if proc.returncode != 0 or not proc.stdout.strip().isdigit():
            raise SourceError(f"{request.component}: cannot read the time of commit {commit} from the mirror "
                              f"{mirror} ({failure_reason(proc.stderr) or 'no output'}); remove "
                              f"{self.root / source_dir(request.component, request.pin.commit)} to fetch it again")
        return int(proc.stdout.strip())

    def _resolve(self, mirror: Path, pin: SourcePin) -> str | None:
        full = self._rev_parse(mirror, f"{pin.commit}^{{commit}}")
        return full if full and full.startswith(pin.commit) else None

    def _rev_parse(self, mirror: Path, rev: str) -> str | None:
        proc = self._git(["-C", str(mirror), "rev-parse", "--verify", "--quiet", rev], capture=True, check=False,
                         record=False)
        return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None

    def _archive(self, mirror: Path, commit: str, dest: Path, paths: list[str]) -> None:
        """Extracts the commit's tree into dest through a scratch tar named after the export's temporary folder,
        so that what a kill leaves of it is found and removed with that folder's other leftovers."""
        scratch = self._scratch
        assert scratch is not None, "_archive runs inside an export"
        try:
            self._git(["-C", str(mirror), "archive", "--format=tar", f"--output={scratch}", commit,
                       *(["--", *paths] if paths else [])], record=False)
            with tarfile.open(scratch) as tar:
                tar.extractall(dest, filter="tar")
        finally:
            scratch.unlink(missing_ok=True)

    def _submodules(self, mirror: Path, commit: str, tree: Path, request: SourceRequest, prefix: str,
                    final_tree: Path) -> None:
        """Exports every submodule at the commit the superproject records (as `git submodule update
        --init --recursive` would), resolving relative URLs against the superproject's URL. Paths and URLs come
        from upstream's .gitmodules, so they pass the matrix's own patterns before git sees them. `tree` is being
        written in a temporary place that becomes `final_tree`; the replay names the final place."""
        if not (tree / ".gitmodules").is_file():
            return
        config = ["config", "--file", str(tree / ".gitmodules")]
        proc = self._git([*config, "--get-regexp", r"^submodule\..*\.path$"], capture=True, check=False, record=False)
        for line in proc.stdout.splitlines():
            key, _, sub_path = line.partition(" ")
            name = key[len("submodule."):-len(".path")]
            url = self._git([*config, f"submodule.{name}.url"], capture=True, record=False).stdout.strip()
            if url.startswith(("./", "../")):
                url = _join_url(request.url, url)
            where = f"{request.component}: submodule {name!r} in .gitmodules at {commit[:12]}"
            if not REL_PATH.fullmatch(sub_path):
                raise SourceError(f"{where}: path {sub_path!r} is not a plain relative path")
            if not GIT_URL.fullmatch(url):
                raise SourceError(f"{where}: URL {url!r} is not an allowed repository URL")
            entry = self._git(["-C", str(mirror), "ls-tree", commit, "--", sub_path], capture=True,
                              record=False).stdout.split()
            if len(entry) < 3 or entry[1] != "commit":
                raise SourceError(f"{where}: no commit recorded for {sub_path}")
            sub_commit = entry[2]
            sub_request = SourceRequest(f"{request.component}/{prefix}{sub_path}",
                                        SourcePin(repo=request.pin.repo, commit=sub_commit, tag=None), url)
            sub_mirror = self._ensure_mirror(url)
            with FileLock(str(sub_mirror) + ".lock"):
                self._fetch_into(sub_mirror, sub_request)
            target = tree / sub_path
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            self.runner.record(self._archive_line(sub_mirror, sub_commit, final_tree / sub_path, []))
            self._archive(sub_mirror, sub_commit, target, [])
            self._submodules(sub_mirror, sub_commit, target, sub_request, f"{prefix}{sub_path}/", final_tree / sub_path)

    @staticmethod
    def _verified(dest: Path, pin: SourcePin) -> TreeRecord | None:
        """The export's record if the export was verified for exactly this pin and its tree is still the one
        recorded. (The folder is named after the commit; an export made for another tag, or none, was never
        checked against this one.)"""
        record = TreeRecord.load(_record_path(dest))
        if record is None or record.identity.get("tag") != pin.tag:
            return None
        if not str(record.identity.get("commit", "")).startswith(pin.commit):
            return None
        problems = record.differences(dest)
        if problems:
            log.warning("%s: not reusing it, it differs from its export (%s); exporting it again", dest,
                        "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""))
            return None
        return record

    def _git(self, args: list[str], *, capture: bool = False, check: bool = True,
             record: bool = True) -> subprocess.CompletedProcess[str]:
        return self.runner.run(["git", *args], env=GIT_ENV, capture=capture, check=check, record=record)


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + RECORD_SUFFIX)


def _join_url(base: str, relative: str) -> str:
    """git's rule for relative submodule URLs: resolve against the superproject URL as if it were a folder."""
    parts = base.rstrip("/").split("/")
    for piece in relative.split("/"):
        if piece == "..":
            parts.pop()
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


def fetch_all(cache: SourceCache, requests: list[SourceRequest]) -> list[ExportedSource]:
    return [dataclasses.replace(exported, commit_time=cache.commit_time(request, exported.commit))
            for request, exported in ((r, cache.export(r)) for r in requests)]


def resolve_cached(root: Path, request: SourceRequest) -> str | None:
    """The full commit of the request's pin in the sources cache's mirror, without fetching (None if not there)."""
    cache = SourceCache(root, Runner())
    mirror = cache.mirror_for(request.url)
    return cache._resolve(mirror, request.pin) if (mirror / "HEAD").exists() else None
