"""The GPU tier uses the pool's GPU count (EPBUILD_NUM_GPUS, set by the generated pipelines from
archs.<arch>.gpu_count): an agent exposing fewer GPUs than its pool promises fails, naming both numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gpu_tier(tmp_path: Path, gpus: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    nodes = tmp_path / "sys" / "class" / "kfd" / "kfd" / "topology" / "nodes"
    (nodes / "0").mkdir(parents=True)
    (nodes / "0" / "properties").write_text("cpu_cores_count 64\ngfx_target_version 0\n")  # the CPU node
    for n in range(1, gpus + 1):
        (nodes / str(n)).mkdir()
        (nodes / str(n) / "properties").write_text("cpu_cores_count 0\ngfx_target_version 90500\n")
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"image": "epbuild-offline/stack:gfx950-cx7-sid", "record": {
        "cell": "gfx950-cx7-sid", "components": {"vllm": {"commit": "0" * 40}, "mori": {}}}}))
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "epbuild" / "checks" / "gpu" / "test_ep_backends.py"), "-p", "no:cacheprovider",
         "--rootdir", str(ROOT / "epbuild" / "checks" / "gpu"), "-q", "-k", "deepep_low_latency"],
        cwd=ROOT, capture_output=True, text=True,
        env={"EPBUILD_EXPECTED": str(expected), "EPBUILD_SYSFS_ROOT": str(tmp_path / "sys"), "PATH": "/usr/bin:/bin",
             "PYTHONPATH": str(ROOT), **env})


def test_fewer_gpus_than_the_pool_promises_fails_naming_both(tmp_path: Path) -> None:
    proc = gpu_tier(tmp_path, gpus=2, env={"EPBUILD_NUM_GPUS": "8"})
    assert proc.returncode == 1, proc.stdout
    assert "EPBUILD_NUM_GPUS=8 (the pool's archs.<arch>.gpu_count) but this host exposes 2 AMD GPU(s)" in proc.stdout


@pytest.mark.parametrize("value", ["two", "0", "-1"])
def test_a_gpu_count_that_is_not_a_positive_number_is_refused(tmp_path: Path, value: str) -> None:
    proc = gpu_tier(tmp_path, gpus=2, env={"EPBUILD_NUM_GPUS": value})
    assert proc.returncode != 0
    assert f"EPBUILD_NUM_GPUS={value!r}: expected a whole number of GPUs, at least 1" in proc.stdout + proc.stderr


def test_without_the_pool_count_one_gpu_is_too_few_for_data_parallel(tmp_path: Path) -> None:
    proc = gpu_tier(tmp_path, gpus=1, env={})
    assert proc.returncode == 1, proc.stdout
    assert "need at least 2 GPUs (data parallel); this run has 1" in proc.stdout
