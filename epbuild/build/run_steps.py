"""The RUN steps one solve of a set of cells executes, as BuildKit dedups them: a step is the same work wherever
its stage's parent, its stage's instructions up to and including it, and what those instructions read (the
stages and named contexts they mount or copy from) are the same. This is finer than stage identity
(epbuild.model.stagegraph.stage_identities): a stage's first steps would be shared by stages that differ only later.
The graph keeps that from happening where it matters (each component's build requirements are a stage of their
own, the same for every arch of one base), and tests/core/test_run_steps.py checks that every distinct step
belongs to one distinct stage, which is what lets a fleet that builds each stage once run each step once.

Build arguments are not part of a step here: the values bake passes (each pin's commit time, MAX_JOBS) are the
same for every cell of one build."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from epbuild.model.stagegraph import parent, stage_identities, stages_for
from epbuild.render.bakefile import cell_target

INSTRUCTION = re.compile(r"^[A-Z]+(\s|$)")
READS = re.compile(r"(?:^|[\s,])(?:--)?from=([A-Za-z0-9_.:/@-]+)")


def _instructions(text: str) -> list[str]:
    """The stage's instructions, comments dropped (BuildKit ignores them), continuation lines joined."""
    out: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if INSTRUCTION.match(line) and (not out or not out[-1].rstrip().endswith("\\")):
            out.append(line)
        elif out:
            out[-1] += "\n" + line
    return out


def run_step_identities(rc: Any) -> list[tuple[str, str]]:
    """(stage name, identity) of every RUN step of the cell, in build order."""
    plan = rc.plan
    stage_ids = stage_identities(rc)
    contexts = cell_target(rc, context_root="")["contexts"]
    steps = []
    for stage in stages_for(plan):
        above = parent(stage, plan)
        prefix: list[str] = [stage_ids[above] if above else plan.base.image]
        for instruction in _instructions(rc.stages[stage.name]):
            prefix.append(instruction)
            for name in READS.findall(instruction):
                prefix.append(stage_ids.get(name) or contexts.get(name) or name)
            if instruction.startswith("COPY ") and "--from=" not in instruction:
                prefix.append(plan.cell.name)  # the cell's own folder
            if instruction.startswith("RUN "):
                steps.append((stage.name, hashlib.sha256("\0".join(prefix).encode()).hexdigest()))
    return steps


def distinct_run_steps(cells: list[Any]) -> dict[str, str]:
    """identity -> stage name, over every distinct RUN step of `cells`."""
    return {identity: stage for rc in cells for stage, identity in run_step_identities(rc)}
