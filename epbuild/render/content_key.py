"""The content key: one digest of everything that decides a cell's image, so equal keys mean equal images.

It covers the cell's recipe (its rendered stages, without the generated header, so neither the matrix's
location nor its comments count) and the exact inputs the recipe names loosely: the base image's digest and
every component's full commit (or a local tree's content digest). The recipe key is known when rendering; the
content key once those inputs are resolved (at build time, or from the engine and the sources cache).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from epbuild.inputs.resolve import Resolved, ResolveError, base_digest, full_commits, pinned_digest
from epbuild.model.stagegraph import built_pins
from epbuild.render.dockerfiles import RenderedCell, Rendering


def content_key(rc: RenderedCell, resolved: Resolved) -> str:
    payload = {
        "recipe": rc.key,
        "base_digest": resolved.base_digests[rc.plan.cell.base],
        "commits": {name: resolved.commits[name] for name in built_pins(rc.plan)},
        "local_trees": {name: digest for name, digest in resolved.dirty.items() if name in built_pins(rc.plan)},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def checkout_inputs(rendering: Rendering, cells: list[RenderedCell], root: Path, *, engine: bool = True,
                    remote: bool = True) -> Resolved:
    """This checkout's exact inputs, resolved without fetching: the base digest from the matrix, then (with
    `engine`) the local engine, then (with `remote`) the registry; full commits from the matrix or the sources
    cache. Raises ResolveError naming what is missing."""
    digests: dict[str, str] = {}
    for rc in cells:
        name, base = rc.plan.cell.base, rc.plan.base
        if name not in digests:
            digest = base_digest(base, remote=remote) if engine else pinned_digest(base)
            if not digest:
                raise ResolveError(f"bases.{name}: the digest of {base.image} is not pinned in the matrix (digest)")
            digests[name] = digest
    wanted = list(dict.fromkeys(name for rc in cells for name in built_pins(rc.plan)))
    return Resolved(base_digests=digests, commits=full_commits(rendering.matrix, wanted, root))


def checkout_keys(rendering: Rendering, cells: list[RenderedCell], root: Path, *, engine: bool = True,
                  remote: bool = True) -> dict[str, str | None]:
    """Each cell's content key for this checkout (see checkout_inputs); None where the inputs cannot be resolved."""
    try:
        resolved = checkout_inputs(rendering, cells, root, engine=engine, remote=remote)
    except ResolveError:
        return {rc.cell.name: None for rc in cells}
    return {rc.cell.name: content_key(rc, resolved) for rc in cells}
