"""The fleet's shared compile cache behind `invoke build --compile-cache URL` (or EPBUILD_COMPILE_CACHE): every
compiled step keeps its local ccache mount and also reads and writes a remote ccache store that every builder
shares, so a pin that moves one native source recompiles that source alone on any agent, fresh or warm.

The tool is ccache's remote storage, not sccache:
- ccache is already the compiler launcher of every compiled stage (CMAKE_<LANG>_COMPILER_LAUNCHER, vLLM's and
  MoRI's CMake find it on PATH), and through the launcher it wraps hipcc and the HIP clang invocations of CMake's
  HIP language alike, so device compiles are cached by the same path as host ones. sccache would have to replace
  it in every stage and be carried in each base's wheelhouse, and wrap clang through HIP_CLANG_PATH as vLLM's
  Dockerfile.rocm_base does.
- Every base has it: Debian trixie and sid ship 4.11 (features http-storage, redis-storage, redis+unix-storage);
  Ubuntu 22.04, under rocm/vllm-dev, ships 4.5, which names the setting `secondary_storage`. 4.6 renamed it
  `remote_storage` and still reads the old name, so each step sets both CCACHE_SECONDARY_STORAGE and
  CCACHE_REMOTE_STORAGE to the one value.
- Back-ends: Redis (`redis://[[USER:]PASSWORD@]HOST[:PORT]`) and HTTP (`http://HOST[:PORT]/PATH`, any server that
  answers GET/PUT/HEAD: nginx WebDAV, bazel-remote's /cas, ...), both in every ccache since 4.4.
- An unreachable store costs a connect timeout per compile (100 ms by default) and counts `remote_storage_error`;
  the compile itself goes on locally, so a dead server makes a build slower, never failed. Each compiled step
  prints its own counts last (STEP_LINE, from its CCACHE_STATSLOG, removed before the layer is taken), and the
  build's summary names the stages whose compiles the store did not answer (seen: rocSHMEM's stand-in against a
  port nothing listens on, `1 compiled, 0 from the shared cache, 1 unreachable`, image built).

How the URL reaches the steps without changing any stage's identity:
- As a BuildKit secret (`--set *.secrets=id=epbuild-compile-cache,env=EPBUILD_COMPILE_CACHE`): the argv names only
  the variable, so replay.sh and the logs never hold the URL or its password. Each compiled RUN line always
  carries `--mount=type=secret,id=epbuild-compile-cache,required=false` and reads the file in the shell; without
  the cache the file is absent and the value empty (no remote store). The RUN line and every mount option are the
  same with and without the cache, and a secret's content is no part of BuildKit's cache key, so the step's key,
  its layer and its history line (`RUN /bin/sh -c ...`, mounts and values not shown) are the same.
- Through the host's network: the server listens on 127.0.0.1 (or is a remote host), and only BuildKit's
  network.host entitlement reaches it without a bridge. The network mode is part of an exec step's cache key
  (ExecOp.Network: moby/buildkit solver/llbsolver/ops/exec.go CacheMap clears only ExtraHosts' IPs, mount
  selectors and ProxyEnv), so a step run on the host network only when the cache is on would get a second
  identity. Every build therefore runs its steps on the host network, cache or not. buildx 0.13 (Debian trixie)
  bake has no `--allow` and ignores `entitlements` and `network` in HCL/JSON; a compose file's `build.network:
  host` is the one bake input that both sets the mode and asks for the entitlement (buildx build/build.go: network
  mode `host` adds network.host to the allowed entitlements), so each run lays such a file over the bake file.
  The docker driver's daemon allows the entitlement unless its daemon.json turns `builder.entitlements.network-host`
  off.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from epbuild.render.compile_cache_lines import SECRET_ID
from epbuild.util.errors import EpbuildError

ENV_VAR = "EPBUILD_COMPILE_CACHE"
"""Where the URL waits for buildx: the secret's source, and the variable `invoke build` reads by default."""
NETWORK_OVERLAY = "host-network.compose.yaml"
"""The compose file, in the run's log folder, that runs every target's steps on the host network."""
SCHEMES = ("redis", "http", "https")
_URL = re.compile(r"(?P<scheme>[a-z+]+)://(?:(?P<userinfo>[^@/\s|]*)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^:/\s|@]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[^\s|]*)?(?P<attributes>(?:\|[a-z-]+=[^\s|]*)*)")


class CompileCacheError(EpbuildError):
    pass


def where(url: str) -> str:
    """The URL without its credentials, for messages: scheme, host and port only."""
    match = _URL.fullmatch(url)
    if match is None:
        return "(not a URL)"
    port = f":{match['port']}" if match["port"] else ""
    return f"{match['scheme']}://{match['host']}{port}"


def checked_url(url: str, source: str = "--compile-cache") -> str:
    """A ccache remote storage URL of a supported back-end; the error never repeats a password."""
    match = _URL.fullmatch(url)
    allowed = ("expected redis://[[USER:]PASSWORD@]HOST[:PORT] or http(s)://HOST[:PORT]/PATH, "
               "optionally followed by ccache's |ATTRIBUTE=VALUE settings")
    if not url:
        raise CompileCacheError(f"{source} is empty: {allowed} (is the variable that should name it unset?)")
    if match is None:
        raise CompileCacheError(f"{source} is not a compile cache URL: {allowed}")
    if match["scheme"] not in SCHEMES:
        raise CompileCacheError(f"{source}: the back-end {match['scheme']!r} is not supported: {allowed}")
    if match["port"] and not 0 < int(match["port"]) < 65536:
        raise CompileCacheError(f"{source}: the port of {where(url)} is out of range (1-65535)")
    return url


def chosen_url(flag: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The flag's URL, else EPBUILD_COMPILE_CACHE's (set but empty: no cache, as an unset CI variable reads)."""
    if flag is not None:
        return checked_url(flag)
    value = environ.get(ENV_VAR, "")
    return checked_url(value, ENV_VAR) if value else None


def bake_arguments() -> list[str]:
    """The secret for every target, read by buildx from EPBUILD_COMPILE_CACHE in its environment."""
    return ["--set", f"*.secrets=id={SECRET_ID},env={ENV_VAR}"]


def network_overlay(targets: Iterable[str]) -> str:
    """The compose file that runs each target's steps on the host network (see the module's docstring). Compose
    builds take their context from the bake file laid under it: this file sets nothing else."""
    lines = ["# Written by epbuild (epbuild/build/compile_cache.py): every step on the host network, cache or not.",
             "services:"]
    for target in sorted(set(targets)):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", target):
            raise CompileCacheError(f"bake target {target!r}: not a name a compose file can hold")
        lines += [f"  {target}:", "    build:", "      network: host"]
    return "\n".join(lines) + "\n"


STEP_LINE = re.compile(r"epbuild: compile cache: (?P<compiled>\d+) compiled, (?P<shared>\d+) from the shared cache, "
                       r"(?P<unreachable>\d+) unreachable$")
"""What each compiled step prints last (epbuild/render/compile_cache_lines.REPORT, from its own ccache statistics log: CCACHE_STATSLOG, one line per counter and
compile, since `ccache --print-stats` would count every stage that shares the local cache mount)."""


@dataclass(frozen=True)
class StepStats:
    stage: str
    compiled: int
    """Real compiler runs (ccache's cache_miss)."""
    shared: int
    """Results the shared store gave (remote_storage_hit)."""
    unreachable: int
    """Compiles for which the store did not answer (remote_storage_error or _timeout): built locally instead."""


def step_stats(stage: str, lines: Iterable[str]) -> StepStats | None:
    """The statistics one step printed, from its progress lines (`#N 12.3 epbuild: compile cache: ...`)."""
    for line in lines:
        if (m := STEP_LINE.search(line.rstrip("\n"))) is not None:
            return StepStats(stage, int(m["compiled"]), int(m["shared"]), int(m["unreachable"]))
    return None


def notice(steps: Iterable[StepStats]) -> str:
    """One line for the build's summary when the store did not answer, else empty."""
    missed = [s for s in steps if s.unreachable]
    if not missed:
        return ""
    total = sum(s.unreachable for s in missed)
    stages = ", ".join(sorted({s.stage for s in missed}))
    return (f"compile cache unreachable: {total} compile{'' if total == 1 else 's'} of {stages} went without the "
            "shared cache and were built locally (the images are the same; check the server and --compile-cache)")
