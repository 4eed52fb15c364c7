"""The `final` stage's text. Its labels name the cell (and carry its recipe key), so no two cells share it; but
cells with the same stages share everything else it renders (the copies, the wheel stages, the runtime
requirements, the environment, the stage above). That is rendered once per matrix with a placeholder for each
label's value and cut at them; each cell joins the pieces with its own values (a fifth of a 1,000-cell render was
rendering `final` once per cell, and then again with its recipe key)."""

from __future__ import annotations

from typing import Any

from epbuild.model import stagegraph
from epbuild.model.plan import CellPlan
from epbuild.render import bakefile, manifest, pieces
from epbuild.render.pieces import Pieces
from epbuild.render.templating import STAGE_TEMPLATES, render, template_in


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


class FinalText:
    """The cell's `final` text as a function of its recipe key (manifest.static_labels: the key reaches the text
    only as the value of the recipe label)."""

    def __init__(self, plan: CellPlan, above: str) -> None:
        self._plan, self._above = plan, above
        labels = manifest.static_labels(plan, "")
        # Everything but the labels' values follows from the stages that apply (copies, wheel stages and runtime
        # requirements are derived from them and the matrix's pins, stagegraph._per_stage_set), the matrix (its
        # runtime environment) and the stage above; the labels' names are in the key as well.
        memo_key = ("final-pieces", above, stagegraph.applied_names(plan), tuple(labels))
        try:
            self._pieces: Pieces | None = plan.shared[memo_key]
        except KeyError:
            holders = dict(zip(labels, pieces.holders(len(labels))))
            self._pieces = plan.shared[memo_key] = Pieces.of(_render({**context(plan, ""), "labels": holders}, above),
                                                             len(labels))
        self._values = list(labels.values())
        self._recipe_at = list(labels).index(manifest.RECIPE_LABEL)

    def text(self, recipe: str) -> str:
        if self._pieces is None:
            return _render(context(self._plan, recipe), self._above)
        self._values[self._recipe_at] = recipe
        return self._pieces.join(self._values)


def _render(context: dict[str, Any], above: str) -> str:
    body = render(template_in(STAGE_TEMPLATES, f"{stagegraph.FINAL}.Dockerfile.j2"), context).rstrip("\n")
    return f"FROM {above} AS {stagegraph.FINAL}\n{body}\n"
