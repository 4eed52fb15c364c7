"""The GPU tier: runs vLLM's data-parallel example on the image with each expert-parallel backend, as vLLM's AMD
CI does. `invoke test --gpu` runs it only on a host with AMD GPUs and says so plainly otherwise."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from epbuild.expectations import EXPECTED_ENV

ROOT = Path(__file__).resolve().parents[2]


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
