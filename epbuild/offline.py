"""The offline example's inputs: a local base image and stand-in git repositories.

Nothing here needs GitHub or Docker Hub, only Debian's package mirror:

* ``ensure_base_image()`` debootstraps a Debian bookworm minbase, imports it as
  ``epbuild-offline/bookworm-minbase:latest`` and builds ``examples/offline/base/Dockerfile``
  on it (Debian sid's HIP toolchain on LLVM 21, rdma-core's build deps, verbs, numa, python3).
* ``ensure_fixture_repos()`` turns ``examples/offline/fixtures/<component>/`` into bare git repos
  ``<dest>/<component>.git`` with deterministic commit hashes (fixed author, committer, dates and
  modes, written with ``git fast-import``), so that a matrix can pin them:
  ``pinned`` (A), ``moved`` (B: another revision string compiled into device code) and, for
  deepep, ``broken`` (C: device code that fails to compile for gfx942 only). rdma-core is the real
  upstream release tarball from Debian's source package, one commit tagged ``v<version>``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epbuild.errors import EpbuildError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_DIR = REPO_ROOT / "examples" / "offline" / "base"
FIXTURES_DIR = REPO_ROOT / "examples" / "offline" / "fixtures"

OFFLINE_BASE_IMAGE = "epbuild-offline/base:sid-hip"
MINBASE_IMAGE = "epbuild-offline/bookworm-minbase:latest"
MINBASE_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("EPBUILD_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# The stand-in components, in the order a build needs them.
COMPONENTS: tuple[str, ...] = ("rocshmem", "deepep", "mori", "aiter", "vllm")
# Components that also get commit C ("broken"), which fails to compile for gfx942 only.
BROKEN_COMPONENTS: frozenset[str] = frozenset({"deepep"})
REV_FILE = "fixture_rev.h"
BROKEN_SNIPPET = (
    '\n#if defined(__gfx942__)\n#error "epbuild fixture: this commit breaks the gfx942 build on purpose"\n#endif\n'
)

# rdma-core: Debian trixie's source package (stable, so the tarball and the commit never move).
RDMA_CORE_SUITE = "trixie"
RDMA_CORE_VERSION = "56.1"
RDMA_CORE_ORIG = f"rdma-core_{RDMA_CORE_VERSION}.orig.tar.gz"
RDMA_CORE_ORIG_SHA256 = "63ce7f2baa7242c2dbc76375dac957c420187dd27f8c5e148efc07971ee522a8"

# Bump when the way repos are generated changes (invalidates every stamp).
GENERATOR_VERSION = "2"
STAMP_FILE = "epbuild-fixture.json"
_IDENT = ("epbuild fixtures", "fixtures@epbuild.invalid")
_EPOCH = 1735689600  # 2025-01-01T00:00:00Z; commit n is dated _EPOCH + n days
_SKIP_DIRS = frozenset({".git", "__pycache__", "build", "dist"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")


class OfflineError(EpbuildError):
    """Making the offline example's base image or fixture repos failed."""


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
    key: str  # pinned, moved, broken
    message: str
    changes: tuple[_Entry, ...]  # whole tree for the first commit, changed files after


# --------------------------------------------------------------------------------------------
# Small helpers


def _run(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    capture: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    args = [str(c) for c in cmd]
    log.debug("run: %s", args)
    try:
        return subprocess.run(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            input=stdin,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        err = (exc.stderr or b"").decode(errors="replace").strip()
        raise OfflineError(f"command failed ({exc.returncode}): {' '.join(args)}\n{err}") from exc


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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".epbuild-fixtures.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Base image


def _image_exists(image: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", image], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return result.returncode == 0


def _ensure_debootstrap() -> str:
    found = shutil.which("debootstrap")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise OfflineError("debootstrap is missing: install it (apt-get install debootstrap) and run as root")
    log.info("installing debootstrap with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "-o", "Acquire::Check-Valid-Until=false", "-qq", "update"], env=env)
    _run(["apt-get", "install", "-y", "-qq", "debootstrap"], env=env)
    found = shutil.which("debootstrap")
    if not found:
        raise OfflineError("debootstrap still not found after apt-get install")
    return found


def _ensure_minbase(image: str = MINBASE_IMAGE, *, rebuild: bool = False) -> None:
    """``debootstrap --variant=minbase bookworm`` + ``docker import``: no registry involved."""
    if not rebuild and _image_exists(image):
        return
    debootstrap = _ensure_debootstrap()
    with tempfile.TemporaryDirectory(prefix="epbuild-minbase-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log.info("debootstrap %s (minbase) into %s", MINBASE_SUITE, rootfs)
        _run([debootstrap, "--variant=minbase", MINBASE_SUITE, rootfs, DEBIAN_MIRROR])
        log.info("docker import -> %s", image)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            imp = subprocess.run(
                ["docker", "import", "-", image], stdin=tar.stdout, stdout=subprocess.DEVNULL, check=False
            )
        finally:
            tar.stdout.close()
            tar_rc = tar.wait()
        if tar_rc != 0 or imp.returncode != 0:
            raise OfflineError(f"tar | docker import failed (tar {tar_rc}, docker {imp.returncode})")


def ensure_base_image(image: str = OFFLINE_BASE_IMAGE, *, rebuild: bool = False) -> None:
    """Build the offline base image unless ``docker image inspect`` finds it (or ``rebuild``)."""
    if not rebuild and _image_exists(image):
        log.info("base image %s present", image)
        return
    _ensure_minbase()
    log.info("building %s from %s", image, BASE_DIR / "Dockerfile")
    cmd = [
        "docker",
        "build",
        "-t",
        image,
        "--build-arg",
        f"MINBASE_IMAGE={MINBASE_IMAGE}",
        "--build-arg",
        f"DEBIAN_MIRROR={DEBIAN_MIRROR}",
    ]
    if rebuild:
        cmd.append("--no-cache")
    _run([*cmd, str(BASE_DIR)])


# --------------------------------------------------------------------------------------------
# Trees and repositories


def _is_skipped(rel: Path) -> bool:
    return any(p in _SKIP_DIRS or p.endswith(_SKIP_SUFFIXES) for p in rel.parts)


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
    for n, commit in enumerate(commits, start=1):
        when = f"{_EPOCH + (n - 1) * 86400} +0000"
        msg = commit.message.encode()
        out.write(f"commit refs/heads/main\nmark :{n}\n".encode())
        out.write(f"author {name} <{email}> {when}\ncommitter {name} <{email}> {when}\n".encode())
        out.write(b"data %d\n%s\n" % (len(msg), msg))
        if n > 1:
            out.write(f"from :{n - 1}\n".encode())
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
        check = subprocess.run(
            ["git", "--git-dir", str(repo), "cat-file", "-e", f"{sha}^{{commit}}"],
            env=_git_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
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


def _tree_digest(tree: Sequence[_Entry]) -> list[tuple[str, str, str]]:
    return [(e.path, e.mode, _sha256(e.data)) for e in tree]


def _rev_file(name: str, tree: Sequence[_Entry]) -> _Entry:
    found = [e for e in tree if e.path.rsplit("/", 1)[-1] == REV_FILE]
    if len(found) != 1 or b'-fixture-rev-A"' not in found[0].data:
        raise OfflineError(f"fixture {name}: expected exactly one {REV_FILE} with a '-fixture-rev-A\"' marker")
    return found[0]


def _component_commits(name: str, tree: list[_Entry], gitlinks: list[_Entry]) -> list[_Commit]:
    rev = _rev_file(name, tree)
    moved = _Entry(rev.path, rev.mode, rev.data.replace(b'-fixture-rev-A"', b'-fixture-rev-B"'))
    commits = [
        _Commit("pinned", f"{name}: stand-in fixture (pinned)\n", tuple(tree + gitlinks)),
        _Commit("moved", f"{name}: move the revision string compiled into device code\n", (moved,)),
    ]
    if name in BROKEN_COMPONENTS:
        broken = _Entry(rev.path, rev.mode, moved.data + BROKEN_SNIPPET.encode())
        commits.append(_Commit("broken", f"{name}: break the gfx942 build on purpose\n", (broken,)))
    return commits


def _simple_repo(dest: Path, name: str, src: Path) -> FixtureRepo:
    tree = _read_tree(src)
    commits = [_Commit("pinned", f"{name}: stand-in fixture\n", tuple(tree))]
    return _install_repo(
        dest, name, _digest(name, _tree_digest(tree)), commits, {"refs/heads/fixture/pinned": "pinned"}
    )


def _component_repo(dest: Path, name: str, fixtures_dir: Path, done: dict[str, FixtureRepo]) -> FixtureRepo:
    tree = _read_tree(fixtures_dir / name)
    gitlinks: list[_Entry] = []
    for sub_path, url in _submodules(tree):
        sub_name = _submodule_repo_name(url)
        if sub_name not in done:
            done[sub_name] = _simple_repo(dest, sub_name, fixtures_dir / sub_name)
        if any(e.path == sub_path or e.path.startswith(sub_path + "/") for e in tree):
            raise OfflineError(f"fixture {name}: submodule path {sub_path} must not exist in the fixture")
        gitlinks.append(_Entry(sub_path, "160000", done[sub_name].commits["pinned"].encode()))
    commits = _component_commits(name, tree, gitlinks)
    refs = {"refs/heads/main": "pinned", **{f"refs/heads/fixture/{c.key}": c.key for c in commits}}
    digest = _digest(
        name, _tree_digest(tree), [(g.path, g.data) for g in gitlinks], BROKEN_SNIPPET, name in BROKEN_COMPONENTS
    )
    return _install_repo(dest, name, digest, commits, refs)


# --------------------------------------------------------------------------------------------
# rdma-core: the real release tarball, from Debian's source package

_APT_SOURCE_SCRIPT = r"""
set -eu
printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$MIRROR" "$SUITE" /usr/share/keyrings/debian-archive-keyring.gpg > /etc/apt/sources.list.d/epbuild-src.sources
apt-get -o Acquire::Check-Valid-Until=false -qq update >&2
mkdir -p /out && cd /out
# Some mirrors refuse the .dsc; apt checks each file it does fetch against the signed Sources
# index, and only the upstream tarball is wanted here.
apt-get -qq source --download-only "$PKG" >&2 || echo "apt-get source failed; keeping what it fetched" >&2
ls -l >&2
tar -cf - ./*.orig.tar.*
"""


def _fetch_rdma_core_tarball(downloads: Path) -> Path:
    """``apt-get source --download-only rdma-core`` in a throwaway minbase container; cached."""
    target = downloads / RDMA_CORE_ORIG
    if target.is_file() and _sha256(target.read_bytes()) == RDMA_CORE_ORIG_SHA256:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    _ensure_minbase()
    log.info("fetching rdma-core source (Debian %s) into %s", RDMA_CORE_SUITE, downloads)
    proc = _run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "bridge",
            "-e",
            f"MIRROR={DEBIAN_MIRROR}",
            "-e",
            f"SUITE={RDMA_CORE_SUITE}",
            "-e",
            "PKG=rdma-core",
            MINBASE_IMAGE,
            "sh",
            "-c",
            _APT_SOURCE_SCRIPT,
        ],
        capture=True,
    )
    with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
        wanted = [n for n in names if Path(n).name == RDMA_CORE_ORIG]
        if not wanted:
            raise OfflineError(
                f"Debian {RDMA_CORE_SUITE} no longer has {RDMA_CORE_ORIG} (got {names}); "
                "update RDMA_CORE_VERSION/RDMA_CORE_ORIG_SHA256 in epbuild/offline.py"
            )
        member = tar.extractfile(wanted[0])
        assert member is not None
        data = member.read()
    if _sha256(data) != RDMA_CORE_ORIG_SHA256:
        raise OfflineError(f"{RDMA_CORE_ORIG}: sha256 {_sha256(data)} != expected {RDMA_CORE_ORIG_SHA256}")
    fd, tmp = tempfile.mkstemp(dir=downloads, prefix=f".{RDMA_CORE_ORIG}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


def _tarball_tree(tarball: Path) -> list[_Entry]:
    entries: dict[str, _Entry] = {}
    with tarfile.open(tarball) as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts[1:]  # strip rdma-core-X/
            if not parts:
                continue
            rel = "/".join(parts)
            if m.issym():
                entries[rel] = _Entry(rel, "120000", m.linkname.encode())
            elif m.isfile() or m.islnk():
                fh = tar.extractfile(m)
                assert fh is not None
                entries[rel] = _Entry(rel, "100755" if m.mode & 0o111 else "100644", fh.read())
    return [entries[k] for k in sorted(entries)]


def _rdma_core_repo(dest: Path) -> FixtureRepo:
    tag = f"v{RDMA_CORE_VERSION}"
    digest = _digest("rdma-core", RDMA_CORE_ORIG_SHA256, tag)
    final = dest / "rdma-core.git"
    stamp = _stamp_ok(final, digest)
    if stamp is not None:  # checked first: a good repo needs neither the cache nor the network
        log.info("fixture repo %s up to date", final)
        return FixtureRepo("rdma-core", final, dict(stamp["commits"]), stamp.get("tag"))
    tarball = _fetch_rdma_core_tarball(dest.parent / "downloads")
    msg = (
        f"rdma-core {RDMA_CORE_VERSION}\n\nUpstream release tarball {RDMA_CORE_ORIG} from Debian "
        f"{RDMA_CORE_SUITE}'s source package (sha256 {RDMA_CORE_ORIG_SHA256}).\n"
    )
    commits = [_Commit("pinned", msg, tuple(_tarball_tree(tarball)))]
    refs = {"refs/heads/main": "pinned", f"refs/tags/{tag}": "pinned"}
    return _install_repo(dest, "rdma-core", digest, commits, refs, tag=tag)


# --------------------------------------------------------------------------------------------


def ensure_fixture_repos(dest: Path, *, fixtures_dir: Path) -> dict[str, FixtureRepo]:
    """Make ``<dest>/<name>.git`` for every fixture (idempotent) and write ``<dest>/commits.json``.

    Returns the repos by name: the components, their submodule repos and rdma-core.
    """
    dest = Path(dest).resolve()
    fixtures_dir = Path(fixtures_dir).resolve()
    with _locked(dest):
        for leftover in dest.glob(".*.git.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        repos: dict[str, FixtureRepo] = {}
        for name in COMPONENTS:
            repos[name] = _component_repo(dest, name, fixtures_dir, repos)
        repos["rdma-core"] = _rdma_core_repo(dest)
        summary = {
            name: {"repo": repo.path.name, "commits": repo.commits, "tag": repo.tag}
            for name, repo in sorted(repos.items())
        }
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=".commits.json.")
        with os.fdopen(fd, "w") as fh:
            json.dump(summary, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest / "commits.json")
    return repos


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m epbuild.offline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    base = sub.add_parser("base", help="build the offline base image")
    base.add_argument("--image", default=OFFLINE_BASE_IMAGE)
    base.add_argument("--rebuild", action="store_true")
    fixtures = sub.add_parser("fixtures", help="make the fixture git repos")
    fixtures.add_argument("dest", type=Path)
    fixtures.add_argument("--fixtures-dir", type=Path, default=FIXTURES_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "base":
        ensure_base_image(args.image, rebuild=args.rebuild)
    else:
        repos = ensure_fixture_repos(args.dest, fixtures_dir=args.fixtures_dir)
        json.dump(
            {n: {"path": str(r.path), "commits": r.commits, "tag": r.tag} for n, r in repos.items()},
            sys.stdout,
            indent=2,
        )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --------------------------------------------------------------------------------------------
# The `prepare: offline-example` recipe of a matrix


REPOS_DIR = REPO_ROOT / "build" / "offline" / "repos"


def prepare(matrix: Any, runner: Any) -> None:
    """Makes what the offline example cannot pull or clone: its base image and its stand-in repositories.

    Both steps do nothing when their result is already there; in a dry run they only say what they would make.
    """
    image = matrix.model.base.image
    if image != OFFLINE_BASE_IMAGE:
        raise OfflineError(
            f"{matrix.path}: base.image: the offline-example recipe makes {OFFLINE_BASE_IMAGE}, not {image!r}"
        )
    if runner.dry_run:
        if not _image_exists(image):
            print(f"# would build the local base image {image} (debootstrap + docker import + {BASE_DIR})")
        print(f"# would make the stand-in repositories under {REPOS_DIR} from {FIXTURES_DIR}")
        return
    ensure_base_image(image)
    ensure_fixture_repos(REPOS_DIR, fixtures_dir=FIXTURES_DIR)


def matrix_variant(dest: Path, *, moved: Sequence[str] = (), broken: Sequence[str] = (),
                   image_name: str | None = None) -> Path:
    """Writes `dest/matrix.yaml`: the example's matrix with the named components pinned to their stand-ins'
    `moved` (or `broken`) commit, its repository paths made absolute so the copy works from anywhere.
    Benchmarks and tests move pins with it; the stand-in repositories must exist (prepare makes them)."""
    import yaml

    commits = json.loads((REPOS_DIR / "commits.json").read_text())
    source = REPO_ROOT / "examples" / "offline" / "matrix.yaml"
    data = yaml.safe_load(source.read_text())
    for kind, names in (("moved", moved), ("broken", broken)):
        for name in names:
            data["components"][name]["commit"] = commits[name]["commits"][kind]
    if image_name:
        data["image"]["name"] = image_name
    for pin in data["components"].values():
        if pin["repo"].startswith("."):
            pin["repo"] = (source.parent / pin["repo"]).resolve().as_uri()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
