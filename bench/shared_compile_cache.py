"""`python3 -m bench.locality --shared-compile-cache`: the fleet's compile cache (epbuild/build/compile_cache.py)
across engines. Engine A, fresh, builds the rocSHMEM stage and the vLLM stage (its native step) at fresh stand-in
commits with the shared cache (a Redis on 127.0.0.1); engine B, another fresh engine whose ccache mount is empty,
builds for each the commit that changes one native source. Target: B compiles that one object and takes every other
from the store (for vLLM's 20 native objects that is the issue's "at most 10%"). What each step compiled and took from the shared store is read from the line every compiled step
prints (`epbuild: compile cache: N compiled, M from the shared cache, K unreachable`).

Only those stages and the stages they start from are built (`--stage`, into a registry stage cache repository of
each engine's own, so nothing is imported across engines but the compile cache)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.engines import private_engine
from bench.results import OFFLINE, ROOT, build_summary, invoke
from bench.standin_work import StandInWork
from epbuild.build.compile_cache import StepStats
from epbuild.offline import matrix_variant

CELL = "gfx950-cx7-sid"
SOURCES = ("projects/rocshmem/src/rocshmem_device.cpp", "projects/rocshmem/src/rocshmem_host.cpp")
"""The start commit changes the device source (new to every cache); the move then changes the host source."""


@contextmanager
def redis_on_loopback(folder: Path) -> Iterator[str]:
    """A throw-away Redis bound to 127.0.0.1 (no persistence), as the compile cache's URL."""
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from registry import free_port

    port = free_port()
    binary = shutil.which("redis-server")
    assert binary, "Debian's redis-server is missing (ci/setup.sh installs it)"
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout == "PONG\n":
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


def fresh_rocshmem_commits(folder: Path) -> tuple[str, str, str]:
    """(repository URL, start, move): start is the stand-in's pinned commit with a new line in the device source,
    move is start with a new line in the host source."""
    work = StandInWork("rocshmem", folder)
    commits = work.appending_commits(SOURCES, lambda n: f'extern "C" const char epbuild_bench_{n}[] = "{time.time_ns()}";',
                                     "bench")
    return work.url, commits[0], commits[1]


def stage_build(folder: Path, name: str, stage: str, pin: dict[str, str], cache_url: str, registry: str
                ) -> dict[str, StepStats]:
    """`stage` of CELL with its component at `pin` (repo, commit), on the engine DOCKER_HOST names; its compiled
    steps' statistics by tool (ccache: the C++/HIP step; sccache: vLLM's Rust step)."""
    matrix = matrix_variant(folder / name, image_name="epbuild-offline/compile-cache-bench", options={stage: pin})
    invoke("render", "--matrix", str(matrix))
    summary = build_summary("--matrix", str(matrix), "--cell", CELL, "--stage", stage, "--cache",
                            f"{registry}/{name}", "--compile-cache", cache_url)
    found = {s["tool"]: StepStats(**s) for s in summary["compile_steps"] if s["stage"] == stage}  # type: ignore[union-attr]
    assert "ccache" in found, f"the {stage} step did not run in {summary['run_dir']}"
    return found


def measure(folder: Path) -> dict[str, object]:
    """Engine A, fresh, builds rocSHMEM's and vLLM's stages at fresh commits with the shared cache; engine B, fresh,
    builds for each the commit that changes one native source."""
    from bench.locality import fresh_vllm_commits

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from registry import Registry

    invoke("sources", "--matrix", OFFLINE, "--cell", CELL)  # the stand-ins and the base image
    repo, start, move = fresh_rocshmem_commits(folder)
    vllm_repo, (vllm_start, vllm_move), _ = fresh_vllm_commits(folder, native_moves=2)
    (folder / "registry").mkdir()
    registry = Registry(folder / "registry")
    cache = f"127.0.0.1:{registry.port}"
    steps: dict[str, dict[str, dict[str, StepStats]]] = {"rocshmem": {}, "vllm": {}}
    try:
        with redis_on_loopback(folder) as url:
            for engine, (rocshmem, vllm) in (("a", (start, vllm_start)), ("b", (move, vllm_move))):
                (folder / engine).mkdir()
                with private_engine(OFFLINE, folder / engine, [CELL]):
                    steps["rocshmem"][engine] = stage_build(folder, f"rocshmem-{engine}", "rocshmem",
                                                            {"repo": repo, "commit": rocshmem}, url, cache)
                    steps["vllm"][engine] = stage_build(folder, f"vllm-{engine}", "vllm",
                                                        {"repo": vllm_repo, "commit": vllm}, url, cache)
    finally:
        registry.stop()
    figures: dict[str, object] = {"cell": CELL}
    for stage, by_engine in steps.items():
        b = by_engine["b"]["ccache"]
        objects = b.compiled + b.shared  # B's own cache is empty: every object was compiled or came from the store
        figures[stage] = {"engine_a_start": by_engine["a"]["ccache"].__dict__, "engine_b_one_source_move": b.__dict__,
                          "engine_b_objects": objects, "engine_b_recompiled_share": round(b.compiled / (objects or 1), 3),
                          # Each move changes one native source: B must compile that one object and take the
                          # rest from the store. The 10% target (#22) is vLLM's; the rocSHMEM stand-in has 4 objects,
                          # so its one moved source is 25% of them.
                          "met": b.compiled == 1 and b.unreachable == 0 and objects > 1
                          and (stage != "vllm" or b.compiled / objects <= 0.10)}
    # vLLM's Rust step runs after its native step in both builds; no Rust source moved, so B must take every result
    # sccache can keep (rustc's rlibs; linking always runs) from the store and compile none.
    rust = {engine: by_tool.get("sccache") for engine, by_tool in steps["vllm"].items()}
    if rust["a"] is not None and rust["b"] is not None:
        figures["vllm_rust"] = {"engine_a_start": rust["a"].__dict__, "engine_b_one_source_move": rust["b"].__dict__,
                                "met": rust["b"].compiled == 0 and rust["b"].shared >= 1 and rust["b"].unreachable == 0}
    return figures
