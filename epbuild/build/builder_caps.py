"""Can the selected buildx builder export BuildKit caches to a registry? `invoke build --cache` asks before it
builds anything, so a builder that cannot fails at once, saying how to get one that can, instead of after an
hour of compiling.

The docker-container, remote and kubernetes drivers run a BuildKit of their own, which exports caches. Docker's
own builder (driver `docker`) exports them only when the engine keeps images in containerd (the containerd
image store: `{"features": {"containerd-snapshotter": true}}` in daemon.json); with the classic store BuildKit
refuses: "Cache export is not supported for the docker driver".
"""

from __future__ import annotations

import json
import re
import subprocess

from epbuild.util.errors import EpbuildError

CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"
EXPORTING_DRIVERS = ("docker-container", "remote", "kubernetes")
HOW_TO_FIX = (
    "turn on the engine's containerd image store ({\"features\": {\"containerd-snapshotter\": true}} in "
    "/etc/docker/daemon.json, then restart dockerd; `ci/setup-docker.sh` sets it up on a fresh machine), or build "
    "with a builder that runs its own BuildKit: `docker buildx create --name epbuild --driver docker-container` "
    "and `invoke build --builder epbuild ...`"
)


class BuilderError(EpbuildError):
    pass


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def builder_driver(builder: str | None) -> str:
    """The driver of `builder` (default: the current builder), as `docker buildx inspect` reports it."""
    argv = ["docker", "buildx", "inspect", *([builder] if builder else [])]
    proc = _run(argv)
    found = re.search(r"^Driver:\s*(\S+)", proc.stdout, re.M)
    if proc.returncode != 0 or not found:
        reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise BuilderError(f"cannot inspect the buildx builder {builder or '(default)'}: {reason}")
    return found.group(1)


def engine_keeps_images_in_containerd() -> bool:
    proc = _run(["docker", "info", "--format", "{{json .DriverStatus}}"])
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise BuilderError(f"cannot ask the Docker engine how it stores images (docker info): {reason}")
    status = json.loads(proc.stdout or "null") or []
    return any(pair == ["driver-type", CONTAINERD_SNAPSHOTTER] for pair in status)


def require_cache_export(builder: str | None) -> str:
    """The builder's driver, or BuilderError when the builder cannot export registry caches."""
    driver = builder_driver(builder)
    if driver in EXPORTING_DRIVERS:
        return driver
    if driver == "docker" and engine_keeps_images_in_containerd():
        return driver
    what = ("Docker's own builder on an engine with the classic image store" if driver == "docker"
            else f"the buildx driver {driver!r}")
    raise BuilderError(f"--cache needs a builder that exports BuildKit caches, but {builder or 'the default builder'}"
                       f" is {what}, which cannot; {HOW_TO_FIX}")

