#!/usr/bin/env bash
# Installs a Docker engine with buildx where one is missing, starts the daemon and waits until it answers.
# On a machine that already has a working engine with buildx it does nothing.
# Debian bookworm's docker.io has no buildx plugin recent enough for bake matrices, so the engine, the
# CLI and buildx come from trixie, pinned low so nothing else on the machine is upgraded from it.
set -euo pipefail

log() { printf 'setup-docker: %s\n' "$*" >&2; }

engine_ready() { docker info >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; }

if engine_ready; then
  log "engine and buildx already work; nothing to do"
  exit 0
fi

# Root, or a non-root CI runner with passwordless sudo (GitHub's hosted runners).
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    log "needs root to install and start the engine (run it with sudo)"
    exit 1
  fi
fi

apt_get() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false "$@"; }

if ! command -v dockerd >/dev/null 2>&1 || ! docker buildx version >/dev/null 2>&1; then
  if [ ! -f /etc/apt/sources.list.d/epbuild-trixie.sources ]; then
    log "adding Debian trixie (pin priority 100) for docker.io, docker-cli and docker-buildx"
    $SUDO tee /etc/apt/sources.list.d/epbuild-trixie.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO tee /etc/apt/preferences.d/epbuild-trixie >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  fi
  apt_get update -qq
  apt_get install -y -qq docker.io/trixie docker-cli/trixie docker-buildx/trixie >/dev/null
fi

# BuildKit registry caches (`invoke build --cache`) need an engine that can export them: Docker's default
# builder can once the containerd image store is on. Set before the daemon starts; an existing daemon.json
# that already names the feature is left alone.
enable_containerd_store() {
  local conf=/etc/docker/daemon.json
  if [ -f "$conf" ] && grep -q '"containerd-snapshotter"' "$conf"; then return; fi
  if [ -f "$conf" ] && [ -s "$conf" ]; then
    $SUDO python3 - "$conf" <<'PY'
import json, os, sys
path = sys.argv[1]
with open(path) as handle:
    conf = json.load(handle)
conf.setdefault("features", {})["containerd-snapshotter"] = True
tmp = path + ".epbuild-tmp"
with open(tmp, "w") as handle:
    json.dump(conf, handle, indent=2)
os.replace(tmp, path)
PY
  else
    $SUDO mkdir -p /etc/docker
    printf '{"features": {"containerd-snapshotter": true}}\n' | $SUDO tee "$conf" >/dev/null
  fi
  log "enabled the containerd image store in $conf (BuildKit cache export)"
}

DOCKERD_LOG=/var/log/epbuild/dockerd.log

start_dockerd() {
  $SUDO mkdir -p /var/log/epbuild
  log "starting dockerd (log: $DOCKERD_LOG)"
  $SUDO sh -c "setsid dockerd >$DOCKERD_LOG 2>&1 </dev/null &"
  for second in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    # dockerd exits on its own when it cannot start; waiting on would only delay the reason.
    if [ "$second" -gt 3 ] && ! pgrep -x dockerd >/dev/null 2>&1; then
      docker info >/dev/null 2>&1
      return
    fi
    sleep 1
  done
  return 1
}

# dockerd gives its builder ten seconds to come up (moby v26 cmd/dockerd/daemon.go: the API routers start under
# context.WithTimeout(..., 10*time.Second)), and BuildKit loads every build cache record in them (moby/buildkit
# cache/manager.go init: one Stat per record and ancestor). Past that the daemon logs "Daemon has completed
# initialization", never listens, and exits with "context deadline exceeded": it cannot start again until the cache
# is smaller, and it cannot prune while it is down. epbuild/build/engine_upkeep.py keeps the start well inside the
# 10 s; this is the way out when something else grew the cache.
builder_start_timed_out() {
  grep -q 'Daemon has completed initialization' "$DOCKERD_LOG" 2>/dev/null &&
    ! grep -q 'API listen on' "$DOCKERD_LOG" &&
    tail -n 1 "$DOCKERD_LOG" | grep -q 'context deadline exceeded'
}

# The cache is only a cache. Its records' metadata goes (the builder then starts with none), and so do the leases
# by which the builder held their snapshots in containerd, so that containerd's GC frees them; images are held by
# their image records, not by leases, and stay. Nothing else runs on the engine while it is being started.
drop_build_cache() {
  local root metadata sock=/var/run/docker/containerd/containerd.sock
  root=$($SUDO python3 -c 'import json
try: print(json.load(open("/etc/docker/daemon.json")).get("data-root") or "/var/lib/docker")
except (OSError, ValueError): print("/var/lib/docker")')
  metadata=$($SUDO find "$root/buildkit" -maxdepth 2 -name metadata_v2.db 2>/dev/null | head -n 1)
  [ -n "$metadata" ] || { log "no build cache metadata under $root/buildkit to drop"; return 1; }
  log "dockerd could not load its build cache in the 10 s it gives the builder; dropping the cache" \
      "($metadata and the builder's containerd leases; images stay)"
  $SUDO rm -f "$metadata"
  start_dockerd || return 1
  if command -v ctr >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # $SUDO is empty or "sudo -n", two words
    $SUDO ctr -a "$sock" -n moby leases ls -q | xargs -r -n 200 $SUDO ctr -a "$sock" -n moby leases rm >/dev/null
  fi
  log "build cache dropped; $(docker system df --format '{{.Type}}: {{.TotalCount}} ({{.Size}})' | tr '\n' ' ')"
}

if ! docker info >/dev/null 2>&1; then
  enable_containerd_store
  start_dockerd || { builder_start_timed_out && drop_build_cache; } || true
fi

if ! engine_ready; then
  log "the engine did not come up; last lines of its log:"
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  exit 1
fi
log "engine $(docker version --format '{{.Server.Version}}'), $(docker buildx version)"
