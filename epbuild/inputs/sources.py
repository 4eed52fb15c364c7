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
import logging
import shlex
import shutil
import tarfile
from pathlib import Path

from filelock import FileLock

from epbuild.inputs.git_mirrors import GIT_ENV, GitMirrors, network_env
from epbuild.inputs.source_requests import ExportedSource, SourceError, SourceRequest
from epbuild.inputs.treerecord import TreeRecord
from epbuild.model.patterns import GIT_URL, REL_PATH
from epbuild.model.pins import SourcePin
from epbuild.util import atomicfs
from epbuild.util.commands import Runner, failure_reason, shell_line
from epbuild.util.paths import source_dir

log = logging.getLogger(__name__)

RECORD_SUFFIX = ".export.json"


class SourceCache(GitMirrors):
    """The mirrors (GitMirrors), and the tree of each component at its pin exported from them."""

    def __init__(self, root: Path, runner: Runner, *, retries: int = 4, backoff: float = 2.0) -> None:
        super().__init__(root, runner, retries=retries, backoff=backoff)
        self._scratch: Path | None = None
        """The tar file `git archive` writes during an export, beside the export's temporary folder."""

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
                url = join_url(request.url, url)
            else:
                # A mirrored component's submodules come from mirrors too, so that a site that reaches only
                # its mirrors fetches every submodule (AITER's composable_kernel, MoRI's third-party code).
                url = request.submodule_url(f"{prefix}{sub_path}", url)
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
            sub_request = SourceRequest(f"{request.component.split('/')[0]}/{prefix}{sub_path}",
                                        SourcePin(repo=request.pin.repo, commit=sub_commit, tag=None), url,
                                        mirrored=request.mirrored, submodule_mirrors=request.submodule_mirrors,
                                        mirror_home=request.mirror_home or request.url)
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


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + RECORD_SUFFIX)


def join_url(base: str, relative: str) -> str:
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
