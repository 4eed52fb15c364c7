"""What a build run reports: per cell its result, duration, image id and failing stage, as the table printed at
the end and the summary.json (with every RUN step BuildKit executed) that benchmarks and tests read."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from epbuild.progress import Progress, Vertex


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
        }

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
