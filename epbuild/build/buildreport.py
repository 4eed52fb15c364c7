"""What a build run reports: per cell its result, duration, image id and failing stage, as the table printed at
the end and the summary.json (with every RUN step BuildKit executed) that benchmarks and tests read."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from epbuild.build import compile_cache
from epbuild.build.progress import Progress, Vertex
from epbuild.model.stagegraph import stage_identities
from epbuild.render.dockerfiles import RenderedCell


@dataclass
class CellResult:
    cell: str
    tag: str
    content_key: str = ""
    ok: bool = False
    duration: float | None = None
    image_id: str | None = None
    failed_stage: str | None = None
    error: str = ""
    log: str | None = None
    """The cell's own log: its vertices, and in a bake of it alone all of that bake's output."""
    failed_vertex: Vertex | None = field(default=None, repr=False)
    retried_after: str = ""
    """The engine's own error (epbuild/build/engine_errors.py) after which this cell was built once more."""

    def forget_failure(self) -> None:
        """Clears a failure that was the engine's, not the build's, before the cell is built again."""
        self.failed_stage, self.failed_vertex, self.error, self.duration = None, None, "", None

    def record(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "failed_vertex"}


@dataclass
class BuildReport:
    run_dir: Path | None
    results: list[CellResult]
    progress: Progress = field(default_factory=Progress)
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def summary(self) -> dict[str, object]:
        """The machine-readable record of a run: per-cell results and every RUN step BuildKit executed."""
        runs = self.progress.runs()
        return {
            "ok": self.ok,
            "wall_seconds": round(self.wall, 2),
            "cells": [r.record() for r in self.results],
            "run_steps": len(runs),
            "executed_run_steps": [{"target": v.target, "stage": v.stage, "op": v.op[:200],
                                    "seconds": round((v.ended or v.started) - v.started, 2)}
                                   for v in self.progress.executed_runs()],
            "compile_steps": [dataclasses.asdict(s) for s in self.compile_steps()],
        }

    def compile_steps(self) -> list[compile_cache.StepStats]:
        """What each compiled step that ran did: real compiles, results from the shared store, unreachable."""
        found = (compile_cache.step_stats(v.stage or v.target, v.lines) for v in self.progress.executed_runs())
        return [s for s in found if s is not None]

    def table(self) -> str:
        rows = [("CELL", "RESULT", "DURATION", "IMAGE ID", "TAG", "FAILED STAGE")]
        for r in self.results:
            rows.append((r.cell, "ok" if r.ok else "FAILED", f"{r.duration:.1f}s" if r.duration is not None else "-",
                         (r.image_id or "-").removeprefix("sha256:")[:12], r.tag, r.failed_stage or "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
        for r in self.results:
            if r.error:
                lines.append(f"{r.cell}: {r.error}" + (f" (log: {r.log})" if r.log else ""))
        if notice := compile_cache.notice(self.compile_steps()):
            lines.append(notice)
        if self.run_dir is not None:
            lines.append(f"logs and replayable commands: {self.run_dir}")
        return "\n".join(lines)


def recorded_image(root: Path, tag: str, content_key: str) -> tuple[str, Path] | None:
    """The image ID, and the run, of this checkout's newest build that made the cell tagged `tag` from inputs with
    `content_key` (the local tag is shared by every checkout on the engine; the ID is what this one built)."""
    for summary in sorted((root / "build" / "logs").glob("*-build-*/summary.json"), reverse=True):
        try:
            cells = json.loads(summary.read_text())["cells"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for cell in cells:
            if (isinstance(cell, dict) and cell.get("ok") and cell.get("image_id") and cell.get("tag") == tag
                    and cell.get("content_key") == content_key):
                return str(cell["image_id"]), summary.parent
    return None


def settle(report: BuildReport, results: dict[str, CellResult], invocation: int, targets: list[str], code: int,
           cells: list[RenderedCell], start: float, bake_error: str = "") -> set[str]:
    """Records what one bake invocation says about its targets (`bake_error`: bake's own last ERROR line);
    returns the cells it failed."""
    now = time.monotonic()
    if code == 0:
        for name in targets:
            results[name].ok = True
            results[name].duration = _finish_time(report.progress, name, start, now)
        return set()
    failed = failed_targets(report.progress, invocation, targets, cells)
    for name, (vertex, shared_with) in failed.items():
        results[name].failed_stage = vertex.stage or "(internal)"
        results[name].failed_vertex = vertex
        origin = "" if shared_with == name else f" (a stage shared with {shared_with}, where it failed)"
        results[name].error = f"stage {vertex.stage}{origin}: {vertex.op[:100]}: {vertex.error[:300]}"
        results[name].duration = now - start
    if not failed:
        for name in targets:
            results[name].error = (f"bake exited {code} without naming a failing stage"
                                   + (f": {bake_error[:300]}" if bake_error else ""))
    return set(failed)


def failed_targets(progress: Progress, invocation: int, remaining: list[str],
                    cells: list[RenderedCell]) -> dict[str, tuple[Vertex, str]]:
    """Each cell of the invocation that failed, with the failing vertex and the cell BuildKit named it under. A
    stage shared by several cells is printed under one of them, but it fails every cell that contains it."""
    identities = {rc.cell.name: stage_identities(rc) for rc in cells}
    out: dict[str, tuple[Vertex, str]] = {}
    for vertex in progress.failures(invocation):
        # A cache ref not in the registry yet is an ERROR vertex, but BuildKit builds on without it.
        if vertex.target not in remaining or vertex.op.startswith("importing cache manifest"):
            continue
        failed_identity = identities[vertex.target].get(vertex.stage or "")
        for name in remaining:
            shares = failed_identity is not None and failed_identity in identities[name].values()
            if (name == vertex.target or shares) and name not in out:
                out[name] = (vertex, vertex.target)
    return out


def _finish_time(progress: Progress, target: str, start: float, fallback: float) -> float:
    ends = [v.ended for v in progress.vertices.values() if v.target == target and v.ended is not None]
    return (max(ends) if ends else fallback) - start
