#!/usr/bin/env bash
# Everything a fresh machine needs before `invoke` and the tests run: Python packages, a Docker engine with
# buildx (started if it is not running) and a registry server for the publish tests. Safe to run again.
# The Python packages go into a virtual environment, build/ci-venv (EPBUILD_VENV moves it), from the hashed lock
# ci/requirements.lock: PEP 668 agents (Debian 12, Ubuntu 24.04) refuse installs into the system Python, and a
# hash pins each file pip may install. Activate it with `. build/ci-venv/bin/activate`.
# ci/requirements.txt is the project with its test extra (the lists are in pyproject.toml). Refresh the lock after
# editing either (uv: `pip install uv` into any venv; the existing lock's pins are kept where they still fit):
#   uv pip compile --universal --python-version 3.11 --generate-hashes --no-header --no-emit-package epbuild \
#     ci/requirements.txt -o ci/requirements.lock
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests publish to Debian's docker-registry on 127.0.0.1 (root, or a CI runner's passwordless sudo).
# gpg and gpgv verify vendor repositories (epbuild/inputs/vendor_repo.py); dpkg-deb indexes the offline example's.
missing=""
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing="$missing python3-venv"  # Debian splits venv out
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
{ command -v gpg && command -v gpgv && command -v gpgconf; } >/dev/null 2>&1 || missing="$missing gnupg gpgv"
command -v dpkg-deb >/dev/null 2>&1 || missing="$missing dpkg"
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"  # tests/core/test_archives.py configures the vLLM stand-in's CMake
command -v cargo >/dev/null 2>&1 || missing="$missing cargo rustc"  # epbuild/inputs/cargo_vendor.py vendors crates on the host
# The shared compile cache's tests and benchmark run a Redis server and nginx (WebDAV, ccache's HTTP back-end and
# sccache's WebDAV one, whose PROPFIND needs the dav-ext module) on 127.0.0.1 (epbuild/build/compile_cache.py)
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -x /usr/sbin/nginx ] || missing="$missing nginx"
[ -e /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ] || missing="$missing libnginx-mod-http-dav-ext"
# tests/core/test_rocshmem_stand_in.py configures the rocSHMEM stand-in's CMake with the host's C++ compiler
{ command -v g++ && command -v make; } >/dev/null 2>&1 || missing="$missing g++ make"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false update -qq
  # The packages' services stay stopped (policy-rc.d, exit 101: "action forbidden"): nginx's default site would
  # listen on every address, and the tests start their own servers on 127.0.0.1.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
  fi
  # shellcheck disable=SC2086 # one word per package
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || install_failed=1
  [ -z "$policy" ] || $SUDO rm -f "$policy"
  [ -z "${install_failed:-}" ] || { echo "setup: apt-get install$missing failed" >&2; exit 1; }
fi
venv="${EPBUILD_VENV:-build/ci-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  -r ci/requirements.lock
# Then epbuild itself, editable (the checkout is what runs), without its dependencies: the lock holds them, hashed.
# -qq: setuptools' warnings about the package data folders are noise here.
"$venv/bin/python" -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
# The tests run `python -m invoke`, pytest and the linters from the environment that runs them: the venv's.
bash ci/setup-docker.sh
# dockerd cannot start once loading its build cache takes over 10 s (epbuild/build/engine_upkeep.py): trim it.
"$venv/bin/python" -m epbuild.build.engine_upkeep
