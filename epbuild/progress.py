"""Reads BuildKit's plain progress output: which vertices ran, were cached, failed, and for which target/stage.

Bake prefixes each vertex with its target and stage (`#12 [gfx950-cx7 rocshmem 1/2] RUN ...`); a vertex that
several targets share is printed once, under one of them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

VERTEX = re.compile(r"^#(?P<id>\d+) \[(?P<target>[^\s\]]+)(?: (?P<stage>[^\s\]]+))?(?: (?P<step>\d+/\d+))?\] (?P<op>.*)$")
STATUS = re.compile(r"^#(?P<id>\d+) (?P<status>DONE|CACHED|ERROR|CANCELED)\b(?P<rest>.*)$")
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

    @property
    def is_run(self) -> bool:
        return self.op.startswith("RUN ")

    @property
    def executed(self) -> bool:
        return self.status == "DONE" and not self.from_cache


@dataclass
class Progress:
    """Accumulates vertices from plain progress lines as they arrive."""

    vertices: dict[tuple[int, int], Vertex] = field(default_factory=dict)
    invocation: int = 0
    """BuildKit numbers vertices from #1 in every invocation; keys are (invocation, number)."""

    def next_invocation(self) -> None:
        self.invocation += 1

    def feed(self, line: str, now: float | None = None) -> Vertex | None:
        now = time.monotonic() if now is None else now
        line = line.rstrip("\n")
        if m := VERTEX.match(line):
            key = (self.invocation, int(m["id"]))
            if key not in self.vertices:
                self.vertices[key] = Vertex(int(m["id"]), m["target"], m["stage"], m["op"], started=now)
            return self.vertices[key]
        if m := STATUS.match(line):
            vertex = self.vertices.get((self.invocation, int(m["id"])))
            if vertex is not None:
                vertex.status = m["status"]
                vertex.from_cache = vertex.from_cache or m["status"] == "CACHED"
                vertex.ended = now
                if m["status"] == "ERROR":
                    vertex.error = m["rest"].lstrip(": ").strip()
            return vertex
        if m := FETCHED.match(line):
            vertex = self.vertices.get((self.invocation, int(m["id"])))
            if vertex is not None:
                vertex.from_cache = True
            return vertex
        if m := re.match(r"^#(\d+) ", line):
            return self.vertices.get((self.invocation, int(m.group(1))))
        return None

    def failures(self) -> list[Vertex]:
        return [v for v in self.vertices.values() if v.status == "ERROR"]

    def runs(self) -> list[Vertex]:
        return [v for v in self.vertices.values() if v.is_run]

    def executed_runs(self) -> list[Vertex]:
        return [v for v in self.runs() if v.executed]
