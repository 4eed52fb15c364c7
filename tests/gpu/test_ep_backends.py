"""vLLM's data-parallel example with each all2all backend (vLLM's AMD CI: tp=1, dp=2 on a 2-GPU agent; here dp is
the pool's GPU count, see the gpu_count fixture)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gpu

BACKENDS = ["deepep_high_throughput", "deepep_low_latency", "mori_high_throughput", "mori_low_latency"]
MODEL = "Qwen/Qwen1.5-MoE-A2.7B"


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_parallel_example(gpu_count: int, expected: dict[str, Any], vllm_examples: Path, backend: str) -> None:
    if backend.startswith("mori") and "mori" not in expected["components"]:
        pytest.fail(f"{backend} needs MoRI, which cell {expected['cell']} does not build")
    argv = [
        "docker", "run", "--rm", "--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "video",
        "--ipc", "host", "--network", "host", "--security-opt", "seccomp=unconfined", "--shm-size", "16g",
        "-v", f"{vllm_examples}:/opt/vllm-examples:ro", "-e", "VLLM_LOGGING_LEVEL=DEBUG",
        "--entrypoint", "python3", expected["image"],
        "/opt/vllm-examples/offline_inference/data_parallel.py", f"--model={MODEL}", "-tp=1", f"-dp={gpu_count}",
        "--max-model-len=2048", f"--all2all-backend={backend}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"{backend} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
