"""The version setuptools-scm would compute for a component built from its git checkout at the pin, computed on
the host from the fetched history and handed to the stage, which builds from an exported tree without `.git`.

Why: MoRI at 2d02c6a9 (setup.py: `use_scm_version=True`, `setup_requires=["setuptools_scm"]`, no fallback
version, no .git_archival.txt) and vLLM version themselves with setuptools-scm, which raises LookupError on a
tree without `.git`. AITER (pyproject.toml@6a0e7b26: `fallback_version = "0.1.0"`) would silently become 0.1.0.

The rules are setuptools-scm's defaults (version scheme guess-next-dev, local scheme node-and-date), as
vcs-versioning 10 implements them (_backends/_git.py: `git describe --dirty --tags --long --abbrev=40 --match
*[0-9]*`; no tag: the fallback version or 0.0 with every commit counted; _node_utils.py: a node is `g` + 9 hex
digits; _modify_version._bump_regex: the last number of the tag goes up by one, then `.dev<distance>`).

A component built from a local checkout (`--source`) gets what setuptools-scm gives in that checkout: the same
rules plus its dirty marker where tracked files have uncommitted changes (vcs-versioning 2.6
_backends/_git.py: `git status --porcelain --untracked-files=no`; _modify_version._format_local_with_time:
`+<node>.d<YYYYMMDD>` of SOURCE_DATE_EPOCH or today, UTC; a dirty tree is never exact, so even on a tag the
version is the next one's .dev0). A local tree that is no git checkout has no such version (setuptools-scm raises
LookupError), so it gets the component's fallback, or 0.0, marked `+local.<digest>` of its content.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from packaging.version import InvalidVersion, Version

from epbuild.util import atomicfs
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import SCM_DIR

VERSION_FILE = "version"
HISTORY_SUFFIX = ".history.json"
"""Beside each version folder (not in it: the folder is a build context): the history the version was computed
from, so the image checks recompute it from that same history (a mirror of another URL, or one fetched without
the tags, gives another version) or say they cannot."""
# setuptools-scm's default tag_regex: an optional `name-` prefix, an optional v, then the version.
TAG_REGEX = re.compile(r"^(?:[\w-]+-)?(?P<version>[vV]?\d+(?:\.\d+){0,2}[^\+]*)(?:\+.*)?$")
DESCRIBE = re.compile(r"^(?P<tag>.+)-(?P<distance>\d+)-g(?P<node>[0-9a-f]+)$")
NODE_LENGTH = 9


class ScmVersionError(EpbuildError):
    pass


def scm_dir(component: str, commit: str) -> str:
    return f"{SCM_DIR}/{component}-{commit}"


def pretend_variable(distribution: str) -> str:
    """setuptools-scm's per-distribution override: SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NORMALIZED NAME>."""
    return "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_" + re.sub(r"[-_.]+", "_", distribution).upper()


def _run_git(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], capture_output=True, text=True, env=env, check=False)


def _tag_version(tag: str, where: str) -> Version:
    match = TAG_REGEX.match(tag)
    try:
        if match is None:
            raise InvalidVersion(tag)
        return Version(match.group("version"))
    except InvalidVersion:
        raise ScmVersionError(f"{where}: tag {tag!r} is not a version setuptools-scm can read") from None


def _bump(version: Version) -> str:
    text = str(version).split("+", 1)[0]
    if ".dev" in text:
        return text.rsplit(".dev", 1)[0]
    match = re.match(r"(.*?)(\d+)$", text)
    assert match is not None  # a normalized Version always ends in a number once its local part is gone
    return f"{match.group(1)}{int(match.group(2)) + 1}"


def compute(mirror: Path, commit: str, *, fallback: str | None = None, where: str = "") -> str:
    """The version of `commit` in the bare repository `mirror`, whose tags must have been fetched."""
    where = where or f"{mirror} at {commit[:12]}"
    return _version(["--git-dir", str(mirror)], commit, fallback, where, dirty=False)


def local_version(tree: Path, head: str | None, digest: str, *, fallback: str | None = None, where: str = "") -> str:
    """The version setuptools-scm gives in the local checkout `tree` (`head`: its HEAD commit; None where the tree
    is no git checkout, which gets `+local.<digest>` instead); `digest`: the sha256 of the tree's content."""
    where = where or str(tree)
    if head is None:
        return f"{fallback or '0.0'}+local.{digest.removeprefix('sha256:')[:16]}"
    status = _run_git(["-C", str(tree), "status", "--porcelain", "--untracked-files=no"])
    if status.returncode != 0:
        raise ScmVersionError(f"{where}: git status failed: {status.stderr.strip()}")
    return _version(["-C", str(tree)], head, fallback, where, dirty=bool(status.stdout.strip()))


def _version(repo: list[str], commit: str, fallback: str | None, where: str, *, dirty: bool) -> str:
    described = _run_git([*repo, "describe", "--tags", "--long", "--abbrev=40", "--match", "*[0-9]*", commit])
    if described.returncode == 0:
        match = DESCRIBE.match(described.stdout.strip())
        if match is None:
            raise ScmVersionError(f"{where}: cannot read `git describe` output {described.stdout.strip()!r}")
        tag, distance, node = _tag_version(match["tag"], where), int(match["distance"]), match["node"]
    else:
        counted = _run_git([*repo, "rev-list", "--count", commit])
        if counted.returncode != 0:
            raise ScmVersionError(f"{where}: git rev-list failed: {counted.stderr.strip()}")
        tag, distance, node = Version(fallback or "0.0"), int(counted.stdout.strip()), commit
    if distance == 0 and not dirty:
        return str(tag)
    local = f"+g{node[:NODE_LENGTH]}" + (f".d{_today():%Y%m%d}" if dirty else "")
    return f"{_bump(tag)}.dev{distance}{local}"


def _today() -> datetime:
    """setuptools-scm's time for a dirty tree: SOURCE_DATE_EPOCH when set, else now (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)


def history_record(root: Path, component: str, commit: str) -> Path:
    """Where the build records the history it computed `component`'s version at `commit` from."""
    return root / (scm_dir(component, commit) + HISTORY_SUFFIX)


def write(root: Path, component: str, commit: str, version: str, *, history: Path | None,
          url: str | None) -> Path:
    """Writes the version where the stage's named context `scm-<component>` reads it (temp + rename), after the
    record of the history (`history`, the bare mirror of `url`) it was computed from: a pin's version on disk
    always has its record. A local tree's version (`history` None) was computed from its own checkout, which the
    image check cannot read again: it gets no record, and the check says it cannot check it."""
    if history is not None:
        record = {"component": component, "commit": commit, "version": version, "git_dir": str(history), "url": url}
        atomicfs.write_text(history_record(root, component, commit),
                            json.dumps(record, indent=2, sort_keys=True) + "\n")
    path = root / scm_dir(component, commit) / VERSION_FILE
    atomicfs.write_text(path, version + "\n")
    return path
