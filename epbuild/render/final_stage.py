"""The `final` stage's text. Its labels name the cell (and carry its recipe key), so no two cells share it; but
cells with the same stages share everything else it renders (the copies, the wheel stages, the runtime
requirements, the environment, the stage above). That is rendered once per matrix with a placeholder for each
label's value and cut at them; each cell joins the pieces with its own values (a fifth of a 1,000-cell render was
rendering `final` once per cell, and then again with its recipe key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from epbuild.model import stagegraph
from epbuild.model.plan import CellPlan
from epbuild.render import bakefile, manifest
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
    """The cell's `final` text, and its JSON string (what the recipe key hashes), as functions of its recipe key
    (manifest.static_labels: the key reaches the text only as the value of the recipe label)."""

    def __init__(self, plan: CellPlan, above: str) -> None:
        self._plan, self._above = plan, above
        labels = manifest.static_labels(plan, "")
        # Everything but the labels' values follows from the stages that apply (copies, wheel stages and runtime
        # requirements are derived from them and the matrix's pins, stagegraph._per_stage_set), the matrix (its
        # runtime environment) and the stage above; the labels' names are in the key as well.
        memo_key = ("final-pieces", above, stagegraph.applied_names(plan), tuple(labels))
        try:
            self._pieces: _Pieces | None = plan.shared[memo_key]
        except KeyError:
            self._pieces = plan.shared[memo_key] = _Pieces.of(_render({**context(plan, ""), "labels": {
                name: _holder(i) for i, name in enumerate(labels)}}, above), len(labels))
        self._values = list(labels.values())
        self._recipe_at = list(labels).index(manifest.RECIPE_LABEL)

    def text(self, recipe: str) -> str:
        if self._pieces is None:  # a label's value is not written exactly once, as it is: the cell renders its own
            return _render(context(self._plan, recipe), self._above)
        self._values[self._recipe_at] = recipe
        return self._pieces.join(self._pieces.texts, self._values)

    def json(self, recipe: str) -> bytes:
        """json.dumps(self.text(recipe)).encode(): JSON escapes character by character, so this is the escaped
        pieces (once per matrix) joined with the escaped values."""
        if self._pieces is None:
            return json.dumps(self.text(recipe)).encode()
        self._values[self._recipe_at] = recipe
        return self._pieces.join(self._pieces.escaped, [encode_basestring_ascii(v)[1:-1] for v in self._values],
                                 '"').encode()


def _holder(i: int) -> str:
    return f"\x00label{i}\x00"


@dataclass(frozen=True)
class _Pieces:
    """`final`'s text rendered with a placeholder for each label's value, cut at them."""

    texts: tuple[str, ...]
    """The texts before, between and after the placeholders."""
    escaped: tuple[str, ...]
    """Each of them JSON-escaped, without quotes."""
    order: tuple[int, ...]
    """The label whose value fills each cut, in the text's order."""

    @classmethod
    def of(cls, shared: str, labels: int) -> _Pieces | None:
        """The pieces of `shared`, or None where a placeholder is not in it exactly once."""
        holders = [_holder(i) for i in range(labels)]
        if any(shared.count(holder) != 1 for holder in holders):
            return None
        order = sorted(range(labels), key=lambda i: shared.index(holders[i]))
        texts, start = [], 0
        for i in order:
            at = shared.index(holders[i])
            texts.append(shared[start:at])
            start = at + len(holders[i])
        texts.append(shared[start:])
        return cls(tuple(texts), tuple(encode_basestring_ascii(t)[1:-1] for t in texts), tuple(order))

    def join(self, pieces: tuple[str, ...], values: list[str], quote: str = "") -> str:
        out = [quote, pieces[0]]
        for label, after in zip(self.order, pieces[1:]):
            out += (values[label], after)
        out.append(quote)
        return "".join(out)


def _render(context: dict[str, Any], above: str) -> str:
    body = render(template_in(STAGE_TEMPLATES, f"{stagegraph.FINAL}.Dockerfile.j2"), context).rstrip("\n")
    return f"FROM {above} AS {stagegraph.FINAL}\n{body}\n"
