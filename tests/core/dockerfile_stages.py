"""Which stages of rendered Dockerfiles are the same work, read from the Dockerfile text alone (independently of
epbuild's stage graph): a stage is identified by its own text and the chain of stages it starts from and mounts."""

from __future__ import annotations

import re


def stage_chains(dockerfile: str) -> dict[str, str]:
    """Build stages with layers (RUN/COPY), final excepted -> a key equal across cells exactly for the same work."""
    blocks = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.S | re.M))
    parents = dict((name, parent) for parent, name in re.findall(r"^FROM (\S+) AS (\S+)$", dockerfile, re.M))

    def key(name: str) -> str:
        if name not in blocks:
            return name  # an image, or a named source context
        mounted = sorted(set(re.findall(r"from=([A-Za-z0-9_-]+)", blocks[name])))
        return "\0".join([name, blocks[name], key(parents[name]), *(key(m) for m in mounted if m != name)])

    return {name: key(name) for name in blocks
            if name != "final" and re.search(r"^(RUN|COPY) ", blocks[name], re.M)}


def shared(dockerfiles: dict[str, str]) -> dict[str, set[str]]:
    """Chain key -> the cells (by name) whose Dockerfile holds that stage."""
    holders: dict[str, set[str]] = {}
    for cell, text in dockerfiles.items():
        for chain in stage_chains(text).values():
            holders.setdefault(chain, set()).add(cell)
    return holders


def run_instructions(dockerfile: str) -> dict[str, int]:
    """Stage -> how many RUN instructions it holds: the RUN steps BuildKit executes for it when nothing is cached."""
    blocks = re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.S | re.M)
    return {name: len(re.findall(r"^RUN ", block, re.M)) for name, block in blocks}
