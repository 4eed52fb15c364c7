"""Locality: move one pin to the stand-in's other commit and rebuild every cell; list the stages that ran.
Targets: vLLM moved -> only `vllm` and `final`; rocSHMEM moved -> only `rocshmem`, `deepep` and `final`; UCX moved ->
only `ucx`, `nixl` (its requirements stage included) and `final` (issue 23).

`--vllm-native` measures the vLLM native step alone, on one cell: a pin move that changes only Python recompiles
no HIP object (the step is cached), and a move to a fresh commit that changes one native source recompiles at
most 10% of the objects (ccache, whose own results the step prints; CCACHE_BASEDIR keeps the paths the same
across pins). The step also prints how many entries the compiler cache held: BuildKit's GC may empty it.
Both measurements run on a private engine (bench/engines.py), never on the shared one."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bench.engines import private_engine
from bench.results import OFFLINE, build_summary, invoke, record
from bench.scratch import scratch
from epbuild.model.stagegraph import component_of
from epbuild.offline import matrix_variant

EXPECTED = {"vllm": {"vllm", "final"}, "rocshmem": {"rocshmem", "deepep", "final"}, "ucx": {"ucx", "nixl", "final"}}
NATIVE_CELL = "gfx950-cx7-sid"
HELD = re.compile(r"^#(?P<vertex>\d+) [\d.]+ epbuild: ccache holds (?P<n>\d+) entries before the native step$")
STAT = re.compile(r"^#(?P<vertex>\d+) [\d.]+ (?P<key>direct_cache_hit|preprocessed_cache_hit|cache_miss)\s+(?P<n>\d+)$")
OBJECT = re.compile(r"^#(?P<vertex>\d+) [\d.]+ \[\d+/\d+\] Building CXX object ")


def moved_matrix(folder: Path, component: str) -> Path:
    path = matrix_variant(folder / component, moved=[component])
    invoke("render", "--matrix", str(path))
    return path


def stages_run(summary: dict[str, object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for step in summary["executed_run_steps"]:  # type: ignore[union-attr]
        out[step["stage"]] = out.get(step["stage"], 0) + 1
    return out


def native_step(run_dir: Path) -> dict[str, int | bool]:
    """What the vLLM native step did in one build: whether it ran at all, the objects ninja built, and ccache's
    hits and misses (a miss is a real compiler invocation)."""
    lines = (run_dir / "bake.log").read_text().splitlines()
    # The native step is the vertex that prints how many entries the compiler cache holds; a cached step prints
    # nothing.
    vertex = next((m["vertex"] for line in lines if (m := HELD.match(line))), None)
    ran = vertex is not None and any(line.startswith(f"#{vertex} DONE") for line in lines)
    stats = {"direct_cache_hit": 0, "preprocessed_cache_hit": 0, "cache_miss": 0}
    objects = 0
    held = None
    for line in lines:
        if (m := HELD.match(line)) and m["vertex"] == vertex:
            held = int(m["n"])
        elif (m := STAT.match(line)) and m["vertex"] == vertex:
            stats[m["key"]] = int(m["n"])
        elif (m := OBJECT.match(line)) and m["vertex"] == vertex:
            objects += 1
    hits = stats["direct_cache_hit"] + stats["preprocessed_cache_hit"]
    return {"step_ran": ran, "objects_built_by_ninja": objects, "ccache_entries_held_before": held,
            "ccache_hits": hits, "hip_compiles": stats["cache_miss"] if ran else 0}


PYTHON_ONLY = "python-only"
"""The stand-in's overlay (epbuild/components/vllm/fixture@python-only/) whose files change Python only."""


def fresh_vllm_commits(folder: Path, native_moves: int) -> tuple[str, list[str], str]:
    """vLLM commits no earlier run compiled: `native_moves` commits, each the stand-in's pinned commit with a new
    revision string in the one native source that includes it (the first is a start whose native step surely
    runs, filling the compiler cache; the next a one-source move), then a commit on top of the last of them with
    the files of the stand-in's python-only overlay, which touch Python only.

    The Python-only move must start from the commit built just before it. The overlay's own commit in the
    stand-in branches off `pinned`, whose csrc/fixture_rev.h differs from the fresh commits': a build of it after
    them moves a native input too (revision.cpp, the one object that includes it, recompiled; measured on a fresh
    engine, whose cache holds no build of `pinned`)."""
    import time

    from bench.standin_work import StandInWork
    from epbuild.model.component import discover
    from epbuild.offline.gitrepo import _read_tree
    from epbuild.offline.overlays import overlays

    work = StandInWork("vllm", folder)
    natives = []
    for _ in range(native_moves):
        work.git("checkout", "-q", work.pinned)
        rev = work.path / "csrc" / "fixture_rev.h"
        rev.write_text(rev.read_text().replace('-fixture-rev-A"', f'-fixture-rev-T{time.time_ns()}"'))
        natives.append(work.commit("bench: a native change"))
    fixture = discover()["vllm"].fixture
    changes = dict(overlays(fixture, _read_tree(fixture)))[PYTHON_ONLY]
    for entry in changes:
        (work.path / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (work.path / entry.path).write_bytes(entry.data)
    python_only = work.commit("bench: a Python-only change (the stand-in's python-only overlay)")
    return work.url, natives, python_only


def vllm_native_builds(folder: Path, commits: dict[str, str], repo: str,
                       build_args: tuple[str, ...] = ()) -> dict[str, dict[str, int | bool]]:
    """Builds NATIVE_CELL at each commit in turn (a private image name, so no other tag moves) and returns what
    the native step did in each build. `build_args`: more `invoke build` options (a test builds only the vllm
    stage: `--stage vllm --cache ...`)."""
    out = {}
    for name, commit in commits.items():
        matrix = matrix_variant(folder / name, image_name="epbuild-offline/locality",
                                options={"vllm": {"repo": repo, "commit": commit}})
        invoke("render", "--matrix", str(matrix))
        summary = build_summary("--matrix", str(matrix), "--cell", NATIVE_CELL, *build_args)
        out[name] = native_step(Path(str(summary["run_dir"])))
    return out


def vllm_native() -> None:
    """The native step's locality for a Python-only and a one-source vLLM pin move, on one cell."""
    figures: dict[str, object] = {"cell": NATIVE_CELL}
    # The stand-in repositories (and the base image) first: on a fresh clone nothing has made them yet.
    invoke("sources", "--matrix", OFFLINE, "--cell", NATIVE_CELL)
    with scratch("locality-") as tmp, private_engine(OFFLINE, Path(tmp), [NATIVE_CELL]):
        repo, (start, moved), python_only = fresh_vllm_commits(Path(tmp), native_moves=2)
        figures.update(vllm_native_builds(Path(tmp), {"start": start, "one_native_source_move": moved,
                                                      "python_only_move": python_only}, repo))
    python_only_move, one_source = figures["python_only_move"], figures["one_native_source_move"]
    # A native step that runs builds every object in a fresh build folder; ccache decides which really compile.
    total = int(one_source["objects_built_by_ninja"]) or 1  # type: ignore[index]
    share = int(one_source["hip_compiles"]) / total  # type: ignore[index]
    figures["targets"] = {"python_only_move_recompiles_nothing": (not python_only_move["step_ran"]  # type: ignore[index]
                                                                  and python_only_move["hip_compiles"] == 0),  # type: ignore[index]
                          "one_source_move_recompiles_at_most_10_percent": share <= 0.10}
    lines = [f"vLLM native step on {NATIVE_CELL}: {total} native objects at the pin.",
             f"Python-only pin move (the stand-in's {PYTHON_ONLY} files on top of the commit built before): native "
             f"step {'ran' if python_only_move['step_ran'] else 'cached'}, "  # type: ignore[index]
             f"{python_only_move['hip_compiles']} HIP compiles; target: cached, 0: "  # type: ignore[index]
             f"{'met' if figures['targets']['python_only_move_recompiles_nothing'] else 'MISSED'}.",  # type: ignore[index]
             f"One-native-source pin move: {one_source['hip_compiles']} of {total} objects recompiled "  # type: ignore[index]
             f"({share:.0%}, {one_source['ccache_hits']} ccache hits, {one_source['ccache_entries_held_before']} "  # type: ignore[index]
             f"entries in the cache before the step); target <= 10%: "
             f"{'met' if figures['targets']['one_source_move_recompiles_at_most_10_percent'] else 'MISSED'}."]  # type: ignore[index]
    record("Locality: vLLM native step", lines, figures)


def shared_compile_cache() -> None:
    """One-source rocSHMEM and vLLM native moves on a fresh engine, with the compile cache another fresh engine
    filled."""
    from bench.shared_compile_cache import measure

    with scratch("compile-cache-") as tmp:
        figures = measure(Path(tmp))
    lines = [f"Shared compile cache (Redis on 127.0.0.1), stand-ins on {figures['cell']}: engine A, fresh, built new "
             "commits; engine B, fresh (empty ccache mount), built for each the commit that changes one native "
             "source. Target: B compiles only that source's object, the rest from the shared store (vLLM: at most 10% of "
             "its objects)."]
    for stage in ("rocshmem", "vllm"):
        f = figures[stage]
        a, b = f["engine_a_start"], f["engine_b_one_source_move"]  # type: ignore[index]
        lines.append(f"{stage}: A compiled {a['compiled']}, {a['shared']} from the shared cache; B compiled "
                     f"{b['compiled']} of {f['engine_b_objects']} objects ({f['engine_b_recompiled_share']:.0%}), "  # type: ignore[index]
                     f"{b['shared']} from the shared cache (device objects included: hipcc for gfx950), "
                     f"{b['unreachable']} unreachable: {'met' if f['met'] else 'MISSED'}.")  # type: ignore[index]
    if "vllm_rust" in figures:
        f = figures["vllm_rust"]
        a, b = f["engine_a_start"], f["engine_b_one_source_move"]  # type: ignore[index]
        lines.append(f"vLLM's Rust frontend (sccache): A compiled {a['compiled']}, {a['shared']} from the shared cache; "
                     f"B compiled {b['compiled']}, {b['shared']} from the shared cache, {b['unreachable']} unreachable "
                     f"(target: B compiles nothing it could cache): {'met' if f['met'] else 'MISSED'}.")  # type: ignore[index]
    else:
        lines.append("vLLM's Rust frontend: its step did not run on both engines (MISSED: no figure).")
    record("Locality: shared compile cache", lines, figures)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python3 -m bench.locality", description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-native", action="store_true", help="measure only the vLLM native step (one cell)")
    parser.add_argument("--shared-compile-cache", action="store_true",
                        help="rocSHMEM and vLLM native moves on a fresh engine, compile cache from another")
    args = parser.parse_args()
    if args.shared_compile_cache:
        shared_compile_cache()
        return
    if args.vllm_native:
        vllm_native()
        return
    invoke("sources", "--matrix", OFFLINE, "--all")
    lines = []
    with scratch("locality-") as tmp, private_engine(OFFLINE, Path(tmp)):
        build_summary("--matrix", OFFLINE, "--all")  # the starting point: every cell built at the pins
        again = build_summary("--matrix", OFFLINE, "--all")  # nothing moved: nothing may run
        figures: dict[str, object] = {"unmoved_run_steps_executed": len(again["executed_run_steps"])}  # type: ignore[arg-type]
        for component, expected in EXPECTED.items():
            summary = build_summary("--matrix", str(moved_matrix(Path(tmp), component)), "--all")
            ran = stages_run(summary)
            met = {component_of(stage) for stage in ran} == expected  # <component>-requirements is the component's
            lines.append(f"{component} moved: stages that ran {', '.join(f'{k} (x{v})' for k, v in sorted(ran.items()))}"
                         f"; target {', '.join(sorted(expected))}: {'met' if met else 'MISSED'}.")
            figures[component] = {"stages_run": ran, "expected": sorted(expected), "met": met,
                                  "wall_seconds": summary["wall_seconds"]}
    record("Locality", lines, figures)


if __name__ == "__main__":
    main()
