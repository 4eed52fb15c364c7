"""Reads BuildKit's plain progress output: which vertices ran, were cached, failed, and for which target/stage.

Bake prefixes each vertex with its target and stage (`#12 [gfx950-cx7 rocshmem 1/2] RUN ...`) when it builds
several targets; with one target there is no prefix (`#19 [rdma-core 1/1] RUN ...`), so which target a line
belongs to depends on the invocation it came from. A vertex that several targets share is printed once, under
one of them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

VERTEX = re.compile(r"^#(?P<id>\d+) \[(?P<label>[^\]]+)\] (?P<op>.*)$")
STATUS = re.compile(r"^#(?P<id>\d+) (?P<status>DONE|CACHED|ERROR|CANCELED)\b(?P<rest>.*)$")
STEP = re.compile(r"^\d+/\d+$")
# A step found in an imported (registry) cache is printed CACHED, and again, with its layers' download and
# extraction and a DONE, when a later step needs its files: fetched, not executed.
FETCHED = re.compile(r"^#(?P<id>\d+) (?:extracting )?sha256:[0-9a-f]{64}\b")


@dataclass
class Vertex:
    id: int
    target: str
    stage: str | None
    op: str
    status: str = "RUNNING"
    started: float = 0.0
    ended: float | None = None
    error: str = ""
    from_cache: bool = False
    """BuildKit found the step in a cache (printed CACHED, or its layers fetched from an imported one)."""
    lines: list[str] = field(default_factory=list)
    """Every progress line BuildKit printed for this vertex, in order."""

    @property
    def is_run(self) -> bool:
        return self.op.startswith("RUN ")

    @property
    def executed(self) -> bool:
        return self.status == "DONE" and not self.from_cache


def parse_label(label: str, targets: Sequence[str]) -> tuple[str, str | None]:
    """(target, stage) of a vertex label, for an invocation that builds `targets`."""
    words = label.split()
    if len(targets) == 1:
        target, rest = targets[0], words
    else:
        target, rest = words[0], words[1:]
    rest = [w for w in rest if not STEP.match(w)]
    return target, (rest[0] if rest else None)


@dataclass
class Progress:
    """Accumulates vertices from plain progress lines as they arrive, from one or several bake invocations
    (which may run at once: each feeds its lines under its own invocation number)."""

    vertices: dict[tuple[int, int], Vertex] = field(default_factory=dict)
    invocations: list[tuple[str, ...]] = field(default_factory=list)
    """The targets of each invocation. BuildKit numbers vertices from #1 in every one; keys are (invocation,
    number)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def start(self, targets: Sequence[str]) -> int:
        """Registers a bake invocation of `targets`; feed its lines with the number this returns."""
        with self._lock:
            self.invocations.append(tuple(targets))
            return len(self.invocations) - 1

    def feed(self, line: str, invocation: int, now: float | None = None) -> Vertex | None:
        now = time.monotonic() if now is None else now
        text = line.rstrip("\n")
        with self._lock:
            vertex = self._vertex(text, invocation, now)
            if vertex is not None:
                vertex.lines.append(line if line.endswith("\n") else line + "\n")
            return vertex

    def _vertex(self, line: str, invocation: int, now: float) -> Vertex | None:
        if m := VERTEX.match(line):
            key = (invocation, int(m["id"]))
            if key not in self.vertices:
                target, stage = parse_label(m["label"], self.invocations[invocation])
                self.vertices[key] = Vertex(int(m["id"]), target, stage, m["op"], started=now)
            return self.vertices[key]
        if m := STATUS.match(line):
            vertex = self.vertices.get((invocation, int(m["id"])))
            if vertex is not None:
                vertex.status = m["status"]
                vertex.from_cache = vertex.from_cache or m["status"] == "CACHED"
                vertex.ended = now
                if m["status"] == "ERROR":
                    vertex.error = m["rest"].lstrip(": ").strip()
            return vertex
        if m := FETCHED.match(line):
            vertex = self.vertices.get((invocation, int(m["id"])))
            if vertex is not None:
                vertex.from_cache = True
            return vertex
        if m := re.match(r"^#(\d+) ", line):
            return self.vertices.get((invocation, int(m.group(1))))
        return None

    def failures(self, invocation: int | None = None) -> list[Vertex]:
        return [v for key, v in self.vertices.items()
                if v.status == "ERROR" and (invocation is None or key[0] == invocation)]

    def runs(self) -> list[Vertex]:
        return [v for v in self.vertices.values() if v.is_run]

    def executed_runs(self) -> list[Vertex]:
        return [v for v in self.runs() if v.executed]
