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
"""The BuildKit secret every compiled step mounts (required=false) at /run/secrets/<id>."""
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

GLOBALS = {"ccache": {"mounts": MOUNTS, "env": ENV, "report": REPORT}}
"""The stage templates' Jinja globals (epbuild/render/templating.py)."""
