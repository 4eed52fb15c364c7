"""The `final` stage's text. Its labels name the cell (and carry its recipe key), so no two cells share it; but
cells with the same stages share everything else it renders (the copies, the wheel stages, the runtime
requirements, the environment, the stage above). That is rendered once per matrix with a placeholder for each
label's value and cut at them; each cell joins the pieces with its own values (a fifth of a 1,000-cell render was
rendering `final` once per cell, and then again with its recipe key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from epbuild.model import stagegraph
from epbuild.model.plan import CellPlan
from epbuild.render import bakefile, manifest
from epbuild.render.templating import STAGE_TEMPLATES, render, template_in

Pieces = tuple[tuple[str, ...], tuple[int, ...]]
"""The shared text cut at the label values: the texts between them, and which label's value fills each cut."""


def context(plan: CellPlan, recipe: str) -> dict[str, Any]:
    """With recipe="" this renders the keyless text the recipe key is computed from."""
    return {
        "copies": stagegraph.copies(plan),
        "wheels_dir": stagegraph.WHEELS_DIR,
        "wheel_stages": stagegraph.wheel_stages(plan),
        "runtime_requirements_of": [name for name in stagegraph.built_pins(plan)
                                    if plan.registry[name].runtime_requirements is not None],
        "runtime_wheels": bakefile.RUNTIME_WHEELS_CONTEXT,
        "env": plan.matrix.runtime_env,
        "labels": manifest.static_labels(plan, recipe),
    }


def final_text(plan: CellPlan, above: str) -> Callable[[str], str]:
    """The cell's `final` text as a function of its recipe key (manifest.static_labels: the key reaches the text
    only as the value of the recipe label)."""
    labels = manifest.static_labels(plan, "")
    # Everything but the labels' values follows from the stages that apply (copies, wheel stages and runtime
    # requirements are derived from them and the matrix's pins, stagegraph._per_stage_set), the matrix (its
    # runtime environment) and the stage above; the labels' names are in the key as well.
    memo_key = ("final-pieces", above, stagegraph.applied_names(plan), tuple(labels))
    try:
        pieces: Pieces | None = plan.shared[memo_key]
    except KeyError:
        pieces = plan.shared[memo_key] = _pieces(plan, above, labels)
    if pieces is None:  # a label's value is not written exactly once, as it is: each cell renders its own
        return lambda recipe: _render(context(plan, recipe), above)
    texts, order = pieces
    values = list(labels.values())
    recipe_at = list(labels).index(manifest.RECIPE_LABEL)

    def text(recipe: str) -> str:
        values[recipe_at] = recipe
        out = [texts[0]]
        for label, after in zip(order, texts[1:]):
            out += (values[label], after)
        return "".join(out)

    return text


def _pieces(plan: CellPlan, above: str, labels: dict[str, str]) -> Pieces | None:
    holders = [f"\x00label{i}\x00" for i in range(len(labels))]
    shared = _render({**context(plan, ""), "labels": dict(zip(labels, holders))}, above)
    if any(shared.count(holder) != 1 for holder in holders):
        return None
    order = sorted(range(len(holders)), key=lambda i: shared.index(holders[i]))
    texts, start = [], 0
    for i in order:
        at = shared.index(holders[i])
        texts.append(shared[start:at])
        start = at + len(holders[i])
    texts.append(shared[start:])
    return tuple(texts), tuple(order)


def _render(context: dict[str, Any], above: str) -> str:
    body = render(template_in(STAGE_TEMPLATES, f"{stagegraph.FINAL}.Dockerfile.j2"), context).rstrip("\n")
    return f"FROM {above} AS {stagegraph.FINAL}\n{body}\n"
