#!/usr/bin/env bash
# Everything a fresh machine needs before `invoke` and the tests run: Python packages, then a Docker engine
# with buildx (started if it is not running). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r ci/requirements.txt
bash ci/setup-docker.sh
