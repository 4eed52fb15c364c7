"""Where the GPU tier runs: one node, or one of several agents running a multi-node case together."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topology:
    nodes: int
    rank: int
    master: str
    """address:port of node 0 (empty on one node)."""

    @property
    def internode(self) -> bool:
        return self.nodes > 1
