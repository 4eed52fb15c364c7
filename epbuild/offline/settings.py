"""Where the offline example's inputs live and what they are made from; its error type; small shared helpers."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from epbuild.util.commands import CommandFailed, Runner, ToolMissing
from epbuild.util.errors import EpbuildError
from epbuild.util.resources import project_root, resource

log = logging.getLogger(__name__)


REPO_ROOT = project_root()
BASE_DIR = resource("examples/offline/base")
FIXTURES_DIR = resource("examples/offline/fixtures")
"""Stand-ins of submodules; each component's own stand-in is in its folder (epbuild/components/<name>/fixture)."""

OFFLINE_BASE_REPOSITORY = "epbuild-offline/base"
# Tags are shared by every checkout on the engine: the suffix changes whenever examples/offline/base/Dockerfile
# does (-ref: the image models the reference base's perftest, AITER/MoRI copies and /app/versions.txt; -mpi-torch:
# its libopenmpi-dev and a stand-in torch for MoRI's build, and ROCm's .info/version for rocSHMEM's; -torchhip:
# that torch says which HIP it was built with (torch.version.hip, which vLLM's setup.py reads); -rust: it
# carries Debian's cargo and rustc for vLLM's Rust frontend; -autotools: autoconf, automake, libtool and libaio's
# headers, which UCX's autogen.sh and NIXL's POSIX backend build with, so no stage of the example runs apt).
BASE_TAG_SUFFIX = "-hip-ref-mpi-torchhip-rust-autotools"
OFFLINE_BASE_IMAGE = f"{OFFLINE_BASE_REPOSITORY}:sid{BASE_TAG_SUFFIX}"
# The Debian suites a base image can be made from (image `epbuild-offline/base:<suite>-hip-ref-mpi-torchhip-rust-autotools`), each with the
# LLVM its hipcc is built on: trixie's HIP 5.7 is on LLVM 17, sid's on LLVM 21.
SUITE_LLVM = {"sid": "21", "trixie": "17"}
MINBASE_IMAGE = "epbuild-offline/bookworm-minbase:latest"
MINBASE_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("EPBUILD_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# Components that also get commit C ("broken"), which fails to compile for gfx942 only.
BROKEN_COMPONENTS: frozenset[str] = frozenset({"deepep"})
# Tags on a stand-in's pinned commit: AITER's pin is a release tag, as in the default matrix (v0.1.10.post3 =
# 6a0e7b26), so setuptools-scm gives it exactly that version.
FIXTURE_TAGS: dict[str, str] = {"aiter": "v0.1.10.post3"}
REV_FILE = "fixture_rev.h"
BROKEN_SNIPPET = (
    '\n#if defined(__gfx942__)\n#error "epbuild fixture: this commit breaks the gfx942 build on purpose"\n#endif\n'
)

# rdma-core: Debian forky's source package. Trixie's 56.1 predates the ionic provider the io cells need; sid and
# forky carry 65.0 (`apt-cache showsrc rdma-core`; trixie-backports has none). The sha256 pins the tarball.
RDMA_CORE_SUITE = "forky"
RDMA_CORE_VERSION = "65.0"
RDMA_CORE_ORIG = f"rdma-core_{RDMA_CORE_VERSION}.orig.tar.gz"
RDMA_CORE_ORIG_SHA256 = "f6ba3d8b2c4aa334c5c883c1ad0772de339011123cff4fb1db32ae7a443fb7ca"

# Bump when the way repos are generated changes (invalidates every stamp).
GENERATOR_VERSION = "3"
STAMP_FILE = "epbuild-fixture.json"
_IDENT = ("epbuild fixtures", "fixtures@epbuild.invalid")
_EPOCH = 1735689600  # 2025-01-01T00:00:00Z; commit n is dated _EPOCH + n days
_SKIP_DIRS = frozenset({".git", "__pycache__"})
_SKIP_TOP_DIRS = frozenset({"build", "dist"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")



class OfflineError(EpbuildError):
    """Making the offline example's base image or fixture repos failed."""



def _run(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    capture: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """A step of making the offline inputs (their own replayable record is `python -m epbuild.offline ...`)."""
    try:
        return Runner().run([str(c) for c in cmd], env=env, whole_env=env is not None, cwd=cwd, stdin=stdin,
                            capture=capture, binary=True, record=False)
    except ToolMissing as exc:
        raise OfflineError(str(exc)) from None
    except CommandFailed as exc:
        raise OfflineError(f"command failed ({exc.returncode}): {shlex.join(exc.argv)}\n{exc.output.strip()}") from None



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


