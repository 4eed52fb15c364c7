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

if ! docker info >/dev/null 2>&1; then
  enable_containerd_store
  $SUDO mkdir -p /var/log/epbuild
  log "starting dockerd (log: /var/log/epbuild/dockerd.log)"
  $SUDO sh -c 'setsid dockerd >/var/log/epbuild/dockerd.log 2>&1 </dev/null &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi

if ! engine_ready; then
  log "the engine did not come up; last lines of its log:"
  tail -n 20 /var/log/epbuild/dockerd.log >&2 || true
  exit 1
fi
log "engine $(docker version --format '{{.Server.Version}}'), $(docker buildx version)"
