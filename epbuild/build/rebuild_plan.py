"""Which stages re-execute in each cell when the matrix changes (stage identities, old vs new), and how long each
took the last time a build ran it (from build/logs/*/summary.json)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from epbuild.model.stagegraph import stage_identities
from epbuild.render.dockerfiles import Rendering

STEP = re.compile(r"\d+/\d+")


@dataclass(frozen=True)
class StageRun:
    stage: str
    seconds: float | None
    """The RUN steps' time in the last build that executed this stage for this cell; None if no log has it."""


def changed_stages(old: Rendering, new: Rendering) -> dict[str, list[str]]:
    """cell -> the stages whose identity differs from the old rendering's (all of them for a new cell)."""
    before = {rc.cell.name: stage_identities(rc) for rc in old.cells}
    out: dict[str, list[str]] = {}
    for rc in new.cells:
        was = before.get(rc.cell.name, {})
        out[rc.cell.name] = [name for name, identity in stage_identities(rc).items() if was.get(name) != identity]
    return out


def last_durations(root: Path) -> dict[tuple[str, str], float]:
    """(cell, stage) -> seconds its RUN steps took in the newest build log that executed them."""
    out: dict[tuple[str, str], float] = {}
    for summary in sorted((root / "build" / "logs").glob("*-build-*/summary.json"), reverse=True):
        try:
            data = json.loads(summary.read_text())
        except (OSError, ValueError):
            continue
        cells = [str(c.get("cell")) for c in data.get("cells", [])]
        found: dict[tuple[str, str], float] = {}
        for step in data.get("executed_run_steps", []):
            where = (str(step.get("target")), str(step.get("stage")))
            if STEP.fullmatch(where[1]) and len(cells) == 1:
                # Bake names no target when it builds one (`[deepep 1/1] RUN ...`): the stage is in its place.
                where = (cells[0], where[0])
            found[where] = found.get(where, 0.0) + float(step.get("seconds") or 0.0)
        for where, seconds in found.items():
            out.setdefault(where, seconds)
    return out


def plan(old: Rendering, new: Rendering, root: Path) -> dict[str, list[StageRun]]:
    durations = last_durations(root)
    return {cell: [StageRun(stage, durations.get((cell, stage))) for stage in stages]
            for cell, stages in changed_stages(old, new).items()}


def describe(rebuild: dict[str, list[StageRun]]) -> list[str]:
    lines = []
    for cell, runs in rebuild.items():
        if not runs:
            lines.append(f"  {cell}: nothing re-executes")
            continue
        parts = [f"{r.stage} ({r.seconds:.0f}s last time)" if r.seconds is not None else f"{r.stage} (no log)"
                 for r in runs]
        known = [r.seconds for r in runs if r.seconds is not None]
        total = f"; at least {sum(known):.0f}s" if known else ""
        lines.append(f"  {cell}: {', '.join(parts)}{total}")
    return lines
