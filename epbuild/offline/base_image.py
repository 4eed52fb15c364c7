"""The offline example's base image, made without a registry: debootstrap a Debian minbase, docker import it,
then build examples/offline/base/Dockerfile (Debian sid's HIP toolchain) on it."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from epbuild.offline.settings import (
    BASE_DIR,
    BASE_TAG_SUFFIX,
    DEBIAN_MIRROR,
    MINBASE_IMAGE,
    MINBASE_SUITE,
    OFFLINE_BASE_IMAGE,
    OFFLINE_BASE_REPOSITORY,
    SUITE_LLVM,
    OfflineError,
    _run,
)
from epbuild.util.commands import query

log = logging.getLogger(__name__)



def _image_exists(image: str) -> bool:
    return query(["docker", "image", "inspect", image]).returncode == 0


def _ensure_debootstrap() -> str:
    found = shutil.which("debootstrap")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise OfflineError("debootstrap is missing: install it (apt-get install debootstrap) and run as root")
    log.info("installing debootstrap with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "-o", "Acquire::Check-Valid-Until=false", "-qq", "update"], env=env)
    _run(["apt-get", "install", "-y", "-qq", "debootstrap"], env=env)
    found = shutil.which("debootstrap")
    if not found:
        raise OfflineError("debootstrap still not found after apt-get install")
    return found


def _ensure_minbase(image: str = MINBASE_IMAGE, *, rebuild: bool = False) -> None:
    """``debootstrap --variant=minbase bookworm`` + ``docker import``: no registry involved."""
    if not rebuild and _image_exists(image):
        return
    debootstrap = _ensure_debootstrap()
    with tempfile.TemporaryDirectory(prefix="epbuild-minbase-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log.info("debootstrap %s (minbase) into %s", MINBASE_SUITE, rootfs)
        _run([debootstrap, "--variant=minbase", MINBASE_SUITE, rootfs, DEBIAN_MIRROR])
        log.info("docker import -> %s", image)
        pipe = f"tar -C {shlex.quote(str(rootfs))} --numeric-owner -c . | docker import - {shlex.quote(image)}"
        _run(["bash", "-o", "pipefail", "-c", pipe], capture=True)


def suite_of(image: str) -> str:
    """The Debian suite an offline base image is made from: epbuild-offline/base:<suite>-hip-ref-mpi-torchhip-rust-autotools."""
    repository, _, tag = image.partition(":")
    suite = tag.removesuffix(BASE_TAG_SUFFIX)
    if repository != OFFLINE_BASE_REPOSITORY or not tag.endswith(BASE_TAG_SUFFIX) or suite not in SUITE_LLVM:
        allowed = ", ".join(f"{OFFLINE_BASE_REPOSITORY}:{s}{BASE_TAG_SUFFIX}" for s in SUITE_LLVM)
        raise OfflineError(f"the offline-example recipe makes {allowed}, not {image!r}")
    return suite


def ensure_base_image(image: str = OFFLINE_BASE_IMAGE, *, archs: Sequence[str] = (), rebuild: bool = False) -> None:
    """Build the offline base image unless ``docker image inspect`` finds it (or ``rebuild``); its toolchain's
    self-check compiles device code for every arch of ``archs``."""
    suite = suite_of(image)
    if not rebuild and _image_exists(image):
        log.info("base image %s present", image)
        return
    _ensure_minbase()
    log.info("building %s from %s", image, BASE_DIR / "Dockerfile")
    cmd = ["docker", "build", "-t", image, "--build-arg", f"MINBASE_IMAGE={MINBASE_IMAGE}",
           "--build-arg", f"DEBIAN_MIRROR={DEBIAN_MIRROR}", "--build-arg", f"DEBIAN_SUITE={suite}",
           "--build-arg", f"LLVM_VERSION={SUITE_LLVM[suite]}"]
    if archs:
        cmd += ["--build-arg", f"OFFLOAD_ARCHS={' '.join(archs)}"]
    if rebuild:
        cmd.append("--no-cache")
    _run([*cmd, str(BASE_DIR)])
