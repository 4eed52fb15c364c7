"""The GPU tier: runs vLLM's data-parallel example on the image with each expert-parallel backend, as vLLM's AMD
CI does, and the pins' own tests. `invoke test --gpu` runs it only on a host with AMD GPUs and says so plainly
otherwise; `invoke test --gpu --dry-run` prints each case's command and what it asserts, running nothing."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from topology import Topology

from epbuild.checks.expectations import EXPECTED_ENV
from epbuild.checks.imagetest import GPU_DRY_RUN_ENV, amd_gpus
from epbuild.util import atomicfs

ROOT = Path.cwd()
"""The checkout whose build/ the tier reads and writes: `invoke test --gpu` runs it from there
(imagetest.run_checks). Not this file's folder: the package may be installed, and its parents are no checkout."""
GPU_COUNT_ENV = "EPBUILD_NUM_GPUS"
"""GPUs per agent of the pool the test runs on: the generated pipelines set it from archs.<arch>.gpu_count."""
NODES_ENV, NODE_RANK_ENV, MASTER_ENV = "EPBUILD_GPU_NODES", "EPBUILD_GPU_NODE_RANK", "EPBUILD_GPU_MASTER"
"""A multi-node run (the MoRI/DeepEP inter-node kernels): the node count, this agent's rank and the first node's
address:port, the same on every agent. Unset: one node."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs AMD GPUs (/dev/kfd)")


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    path = os.environ.get(EXPECTED_ENV)
    if not path:
        raise pytest.UsageError(f"the GPU tier needs {EXPECTED_ENV}: run it through `invoke test --gpu`")
    data = json.loads(Path(path).read_text())
    return {**data["record"], **data.get("nic_userspace", {}), "image": data["image"],
            "sources": data.get("sources", {})}


def dry_run() -> bool:
    return os.environ.get(GPU_DRY_RUN_ENV) == "1"  # invoke test --gpu --dry-run


@pytest.fixture(scope="session")
def topology() -> Topology:
    raw = os.environ.get(NODES_ENV, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"{NODES_ENV}={raw!r}: expected a whole number of nodes, at least 1")
    nodes = int(raw)
    if nodes == 1:
        return Topology(1, 0, "")
    rank, master = os.environ.get(NODE_RANK_ENV, ""), os.environ.get(MASTER_ENV, "")
    if not rank.isdigit() or int(rank) >= nodes or not re.fullmatch(r"[A-Za-z0-9.:-]+:\d+", master):
        raise pytest.UsageError(f"{NODES_ENV}={nodes} needs {NODE_RANK_ENV} (0..{nodes - 1}) and {MASTER_ENV} "
                                f"(address:port of node 0); got {rank!r} and {master!r}")
    return Topology(nodes, int(rank), master)


@pytest.fixture(scope="session")
def run_in_image(expected: dict[str, Any]) -> Callable[..., str]:
    """Runs `argv` in the cell's image with the GPUs (and RDMA devices, if any) passed in, keeps its log under
    build/reports/gpu-logs/ and returns it. In a dry run it prints the command and reports the case not run."""
    logs = ROOT / "build" / "reports" / "gpu-logs"

    def run(case: str, argv: list[str], *, mounts: dict[str, str] | None = None, expect: str = "") -> str:
        devices = ["--device", "/dev/kfd", "--device", "/dev/dri"]
        if Path("/dev/infiniband").is_dir():
            devices += ["--device", "/dev/infiniband"]
        volumes = [arg for host, inside in (mounts or {}).items() for arg in ("-v", f"{host}:{inside}:ro")]
        docker = ["docker", "run", "--rm", *devices, "--group-add", "video", "--ipc", "host", "--network", "host",
                  "--security-opt", "seccomp=unconfined", "--shm-size", "16g", *volumes,
                  "-e", "VLLM_LOGGING_LEVEL=DEBUG", "--entrypoint", argv[0], expected["image"], *argv[1:]]
        if dry_run():
            print(f"\n[{case}] {shlex.join(docker)}" + (f"\n[{case}] asserts: {expect}" if expect else ""))
            pytest.skip(f"not run: dry run ({case})")
        proc = subprocess.run(docker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
        atomicfs.write_text(logs / f"{expected['cell']}-{case}.log", proc.stdout)
        assert proc.returncode == 0, f"{case} exited {proc.returncode}:\n{proc.stdout[-4000:]}"
        return proc.stdout

    return run


@pytest.fixture(scope="session")
def vllm_examples(expected: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vLLM's examples/ at the pinned commit (the wheel does not ship them): the build's export of the pin, else
    exported from the pin's history the build fetched."""
    source = expected["sources"]["vllm"]
    folder = ROOT / "build" / "sources" / f"vllm-{source['commit']}" / "examples"
    if folder.is_dir() or dry_run():
        return folder
    dest = tmp_path_factory.mktemp("vllm-pin")
    archive = subprocess.run(["git", "--git-dir", source["git_dir"], "archive", "--format=tar", source["commit"],
                              "--", "examples"], capture_output=True)
    assert archive.returncode == 0, (f"vLLM's examples/ at {source['commit'][:12]}: neither exported ({folder}) nor "
                                     f"readable from {source['git_dir']}: {archive.stderr.decode()[-300:]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "examples"


@pytest.fixture(scope="session")
def gpu_count() -> int:
    """How many GPUs the data-parallel example spreads over: the pool's count (EPBUILD_NUM_GPUS), else every GPU
    this host exposes. An agent with fewer GPUs than its pool promises is a misconfigured pool: fail, naming both,
    rather than test less than the matrix says."""
    raw = os.environ.get(GPU_COUNT_ENV)
    if dry_run():
        return int(raw) if raw and raw.isdigit() and int(raw) >= 1 else 2
    host = len(amd_gpus())
    if raw is None:
        wanted = host
    elif raw.isdigit() and int(raw) >= 1:
        wanted = int(raw)
    else:
        raise pytest.UsageError(f"{GPU_COUNT_ENV}={raw!r}: expected a whole number of GPUs, at least 1")
    if host < wanted:
        pytest.fail(f"{GPU_COUNT_ENV}={wanted} (the pool's archs.<arch>.gpu_count) but this host exposes {host} "
                    f"AMD GPU(s)")
    if wanted < 2:
        pytest.fail(f"the expert-parallel all2all backends need at least 2 GPUs (data parallel); this run has {wanted}")
    return wanted
