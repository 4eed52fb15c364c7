"""The stage graph as BuildKit sees it: which stages of a set of cells are the same work (the build uses it
to fail every cell that shares a failed stage; the sharing benchmark to count distinct stages).

A stage's identity is its text plus the identities of everything it builds on (its FROM parent, the stages it
mounts or copies from, the sources it mounts), so equal identities are exactly the stages one solve builds once.
"""

from __future__ import annotations

import hashlib
import re

from epbuild.bakefile import VENDOR_CONTEXT
from epbuild.render import RenderedCell

REFERENCE = re.compile(r"^FROM (\S+) AS|(?:--|,)from=([A-Za-z0-9_-]+)", re.M)


def stage_identities(rc: RenderedCell) -> dict[str, str]:
    pins = rc.plan.pins
    ids: dict[str, str] = {}
    for name, text in rc.stages.items():  # build order: parents come first
        parts = [text]
        for parent, other in REFERENCE.findall(text):
            ref = parent or other
            if ref in ids:
                parts.append(ids[ref])
            elif ref.startswith("src-"):
                parts.append(pins[ref[4:]].commit)
            elif ref == VENDOR_CONTEXT and rc.plan.vendor is not None:
                parts.append(rc.plan.vendor.digest())
            else:
                parts.append(ref)  # an image reference
        if name == "final":
            parts.append(rc.cell.name)  # final COPYs files of the cell's own folder
        ids[name] = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return ids


def distinct_run_steps(cells: list[RenderedCell]) -> dict[str, tuple[str, int]]:
    """identity -> (stage name, RUN instructions in it), over the distinct stages of `cells`."""
    out: dict[str, tuple[str, int]] = {}
    for rc in cells:
        for name, identity in stage_identities(rc).items():
            runs = len(re.findall(r"^RUN ", rc.stages[name], re.M))
            if runs:
                out[identity] = (name, runs)
    return out
