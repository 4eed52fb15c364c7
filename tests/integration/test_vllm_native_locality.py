"""The vLLM native step's locality on the stand-in, in CI (bench.locality --vllm-native's Python-only target): a
pin move that changes only Python must find the native extension step in BuildKit's cache and compile no HIP
object. Two builds of the vllm stage alone (`--stage vllm`, into a registry cache on 127.0.0.1): a fresh commit
(its native step runs, which shows the measurement sees the step at all), then that commit plus the stand-in's
python-only files. What the step did is read from BuildKit's own output (bake.log) by the benchmark's reader.

On an engine of its own, as the benchmark: on the shared engine, other builds' BuildKit garbage collection emptied
the cell's cache between two builds (every compiled stage ran again; seen while writing this test). Only the vllm
stage and the stages it starts from (base, vllm-requirements) are built, not the cell: the first build compiles
the stand-in's native objects and its Rust frontend, the second packages the wheel again. Cost on the 2-core
machine at a load of 15-20: 12.5 min in all, of which the engine's start and base image load, the first build
572 s (CMake configure, 22 HIP objects, Rust), the second 8.5 s."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from harness import OFFLINE, ROOT, invoke
from registry import Registry

sys.path.insert(0, str(ROOT))
from bench.engines import private_engine  # noqa: E402
from bench.locality import NATIVE_CELL, fresh_vllm_commits, vllm_native_builds  # noqa: E402

pytestmark = pytest.mark.docker


def test_a_python_only_vllm_move_reuses_the_native_step(docker_engine: None) -> None:
    invoke("sources", "--matrix", OFFLINE, "--cell", NATIVE_CELL, check=True)  # the stand-ins and base image
    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp, private_engine(OFFLINE, Path(tmp), [NATIVE_CELL]):
        (Path(tmp) / "registry").mkdir()
        registry = Registry(Path(tmp) / "registry")
        try:
            repo, (start,), python_only = fresh_vllm_commits(Path(tmp), native_moves=1)
            only_vllm = ("--stage", "vllm", "--cache", f"127.0.0.1:{registry.port}/epbuild/locality")
            steps = vllm_native_builds(Path(tmp), {"start": start, "python_only_move": python_only}, repo, only_vllm)
        finally:
            registry.stop()
    assert steps["start"]["step_ran"] and steps["start"]["objects_built_by_ninja"], steps["start"]
    assert steps["start"]["hip_compiles"] >= 1, steps["start"]  # its revision string is new: one object compiles
    assert not steps["python_only_move"]["step_ran"], steps["python_only_move"]
    assert steps["python_only_move"]["hip_compiles"] == 0, steps["python_only_move"]
