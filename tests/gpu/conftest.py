"""The GPU tier: runs vLLM's data-parallel example on the image with each expert-parallel backend, as vLLM's AMD
CI does. `invoke test --gpu` runs it only on a host with AMD GPUs and says so plainly otherwise."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from epbuild.expectations import EXPECTED_ENV
from epbuild.imagetest import amd_gpus

ROOT = Path(__file__).resolve().parents[2]
GPU_COUNT_ENV = "EPBUILD_NUM_GPUS"
"""GPUs per agent of the pool the test runs on: the generated pipelines set it from archs.<arch>.gpu_count."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs AMD GPUs (/dev/kfd)")


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    path = os.environ.get(EXPECTED_ENV)
    if not path:
        raise pytest.UsageError(f"the GPU tier needs {EXPECTED_ENV}: run it through `invoke test --gpu`")
    data = json.loads(Path(path).read_text())
    return {**data["record"], **data.get("nic_userspace", {}), "image": data["image"]}


@pytest.fixture(scope="session")
def vllm_examples(expected: dict[str, Any]) -> Path:
    """vLLM's examples/ from the exported source of the pinned commit (the wheel does not ship them)."""
    pin = expected["components"]["vllm"]
    folder = ROOT / "build" / "sources" / f"vllm-{pin['commit']}" / "examples"
    assert folder.is_dir(), f"{folder} missing: run `invoke sources --arch ... --nic ...` first"
    return folder


@pytest.fixture(scope="session")
def gpu_count() -> int:
    """How many GPUs the data-parallel example spreads over: the pool's count (EPBUILD_NUM_GPUS), else every GPU
    this host exposes. An agent with fewer GPUs than its pool promises is a misconfigured pool: fail, naming both,
    rather than test less than the matrix says."""
    host = len(amd_gpus())
    raw = os.environ.get(GPU_COUNT_ENV)
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
