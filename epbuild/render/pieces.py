"""A text rendered once with a placeholder for each of its per-cell values, cut at them: each cell joins the
pieces with its own values instead of rendering the template again (what a template renders around a value it
inserts verbatim does not depend on the value)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass



def holders(count: int) -> list[str]:
    """The placeholders to render in place of `count` values: NULs, which no template or value writes."""
    return [f"\x00value{i}\x00" for i in range(count)]


@dataclass(frozen=True)
class Pieces:
    texts: tuple[str, ...]
    """The texts before, between and after the placeholders."""
    order: tuple[int, ...]
    """The value that fills each cut, in the text's order."""

    @classmethod
    def of(cls, text: str, count: int) -> Pieces | None:
        """The pieces of `text` rendered with holders(count), or None where a placeholder is not in it exactly
        once (the template repeats, drops or transforms a value): each cell must render its own then."""
        marks = holders(count)
        if any(text.count(mark) != 1 for mark in marks):
            return None
        order = sorted(range(count), key=lambda i: text.index(marks[i]))
        texts, start = [], 0
        for i in order:
            at = text.index(marks[i])
            texts.append(text[start:at])
            start = at + len(marks[i])
        texts.append(text[start:])
        return cls(tuple(texts), tuple(order))

    def join(self, values: Sequence[str]) -> str:
        """The text with `values` in place of the placeholders."""
        return _join(self.texts, self.order, values)


def _join(texts: tuple[str, ...], order: tuple[int, ...], values: Sequence[str]) -> str:
    out = [texts[0]]
    for value, after in zip(order, texts[1:]):
        out += (values[value], after)
    return "".join(out)
