"""Fresh Docker engines for the fleet benchmark and the stage-cache tests: separate dockerd instances, each with its
own data root, exec root, pidfile, socket, containerd (dockerd supervises one under its exec root) and bridge,
started and stopped here, so builds on them start from nothing and never touch the shared engine or its cache.

Each engine gets a bridge created for it and removed after, and leaves iptables alone: a second dockerd started
with `"bridge": "none"` deletes the host's docker0 and breaks the first engine's networking. Builds on these
engines need no network of their own (the offline example); BuildKit reaches the registry on 127.0.0.1 from the
host's namespace. Base images are handed over with `docker save | docker load`, as no registry holds them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SHARED_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass
class FreshEngine:
    root: Path
    index: int
    containerd_store: bool = True
    """Keep images in containerd, so Docker's own builder can export registry caches."""
    process: subprocess.Popen[bytes] | None = None
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="epbf-")))
    """Exec root and sockets: unix socket paths must stay under 104 characters, which a test's folder may not."""

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """The environment that points docker, buildx and epbuild at this engine."""
        return {**os.environ, "DOCKER_HOST": self.host}

    @property
    def bridge(self) -> str:
        return f"epbfleet{os.getpid() % 10000}x{self.index}"[:15]

    def docker(self, *args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert str(self.socket) not in SHARED_SOCKETS
        return subprocess.run(["docker", "--host", self.host, *args], capture_output=True, text=True,
                              check=check, **kwargs)  # type: ignore[call-overload]

    def start(self) -> None:
        _stop_on_sigterm()
        self.root.mkdir(parents=True, exist_ok=True)
        subnet = f"10.{213 + (os.getpid() // 200) % 40}.{os.getpid() % 200 + self.index}.1/24"
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", subnet, "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        config = {"bridge": self.bridge, "iptables": False, "ip6tables": False, "ip-forward": False,
                  "ip-masq": False}
        if self.containerd_store:
            config["features"] = {"containerd-snapshotter": True}
        # A benchmark measures which steps a build re-ran, so the builder must not drop records on its own: with
        # GC on, dockerd's default policy (moby builder-next DefaultGCPolicy) prunes the least recently used
        # records once the cache passes its cap, and 9 cells' stages take over 20 GB, so a later cell can re-run
        # stages an earlier one built. The engine's data root is removed when it stops: nothing outlives it.
        config["builder"] = {"gc": {"enabled": False}}
        (self.root / "daemon.json").write_text(json.dumps(config))
        log = open(self.root / "dockerd.log", "wb")
        self.process = subprocess.Popen(
            ["dockerd", "--config-file", str(self.root / "daemon.json"), "--data-root", str(self.root / "data"),
             "--exec-root", str(self.run_dir / "exec"), "--pidfile", str(self.root / "docker.pid"),
             "--host", self.host],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300  # a loaded machine (parallel builds) can take minutes
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.docker("info", check=False).returncode == 0:
                return
            time.sleep(0.5)
        log_tail = (self.root / "dockerd.log").read_text(errors="replace")[-1500:]
        self.stop()
        raise RuntimeError(f"dockerd {self.index} did not start; the end of its log:\n{log_tail}")

    def load(self, image_tar: Path, images: Sequence[str]) -> None:
        """Loads a `save_images` tar and checks that `images` arrived under their own tags (a build would
        otherwise try to make a missing base on this engine, which cannot)."""
        with image_tar.open("rb") as tar:
            self.docker("load", stdin=tar)
        missing = [i for i in images if self.docker("image", "inspect", i, check=False).returncode != 0]
        if missing:
            raise RuntimeError(f"engine {self.index}: {', '.join(missing)} not loaded from {image_tar}")

    def forget_builds(self, keep_images: tuple[str, ...]) -> None:
        """Every local trace of earlier builds on this engine gone: its BuildKit cache (records, layers, cache
        mounts) and every image but `keep_images`. Only ever this engine's, never the shared one's."""
        listed = self.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        for image in listed:
            if image not in keep_images:
                self.docker("image", "rm", "--force", image, check=False)
        self.docker("builder", "prune", "--all", "--force")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        # dockerd unmounts its layers on a clean stop, but leaves its exec root and (overlay2) its data root
        # mounted on themselves.
        for mounted in (self.run_dir / "exec", self.root / "data"):
            subprocess.run(["umount", "--recursive", "--lazy", str(mounted)], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _stop_on_sigterm() -> None:
    """SIGTERM (kill, a CI job's timeout) ends the run through its `finally` blocks, which stop the engines it
    started: Python's default SIGTERM exits at once and would leave each dockerd running with its mounts and its
    bridge. Only the main thread may set a handler."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def base_images(matrix: str, cells: Collection[str] = ()) -> tuple[str, ...]:
    """The base images the matrix's cells (or only `cells`) start from, as its `bases:` name them: what a fresh
    engine must be handed, since it cannot make one itself (the offline recipe apt-installs from Debian, and the
    fresh engine's containers have no network)."""
    from epbuild.cli import project

    rendering = project.rendering(matrix)
    unknown = set(cells) - {rc.cell.name for rc in rendering.cells}
    if unknown:
        raise ValueError(f"{matrix} has no cell {', '.join(sorted(unknown))}")
    return tuple(dict.fromkeys(rc.plan.base.image for rc in rendering.cells if not cells or rc.cell.name in cells))


def save_images(images: Sequence[str], dest: Path) -> Path:
    """`docker save` of images of the shared engine (read-only there) into one tar, to load into fresh engines.
    Each must be there already: the matrix's prepare step (`invoke sources`) makes the offline bases."""
    for image in images:
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            raise RuntimeError(f"the shared engine has no {image}: prepare the matrix first (invoke sources)")
    subprocess.run(["docker", "save", "--output", str(dest), *images], check=True)
    return dest


@contextmanager
def private_engine(matrix: str, work: Path, cells: Collection[str] = ()) -> Iterator[FreshEngine]:
    """A fresh engine holding only `matrix`'s base images (those of `cells`, if given), made the default for this
    process and every command it starts (DOCKER_HOST), stopped after. Cold measurements start on it from nothing
    and empty only its cache, so a benchmark never touches the shared engine's BuildKit cache or tags, and may run
    beside other builds."""
    images = base_images(matrix, cells)
    engine = FreshEngine(work / "engine", 0)
    previous = os.environ.get("DOCKER_HOST")
    try:
        tar = save_images(images, work / "bases.tar")
        engine.start()
        engine.load(tar, images)
        tar.unlink()
        os.environ["DOCKER_HOST"] = engine.host
        yield engine
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        engine.stop()
