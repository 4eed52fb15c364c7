#!/usr/bin/env bash
# Everything a fresh machine needs before `invoke` and the tests run: Python packages, a Docker engine with
# buildx (started if it is not running) and a registry server for the publish tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r ci/requirements.txt
bash ci/setup-docker.sh
# The tests publish to Debian's docker-registry on 127.0.0.1 (root, or a CI runner's passwordless sudo).
# gpg and gpgv verify vendor repositories (epbuild/vendor_repo.py); dpkg-deb indexes the offline example's.
missing=""
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
{ command -v gpg && command -v gpgv && command -v gpgconf; } >/dev/null 2>&1 || missing="$missing gnupg gpgv"
command -v dpkg-deb >/dev/null 2>&1 || missing="$missing dpkg"
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"  # tests/core/test_archives.py configures the vLLM stand-in's CMake
command -v cargo >/dev/null 2>&1 || missing="$missing cargo rustc"  # epbuild/cargo_vendor.py vendors crates on the host
# tests/core/test_rocshmem_stand_in.py configures the rocSHMEM stand-in's CMake with the host's C++ compiler
{ command -v g++ && command -v make; } >/dev/null 2>&1 || missing="$missing g++ make"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false update -qq
  # shellcheck disable=SC2086 # one word per package
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
