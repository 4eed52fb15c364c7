"""What a component's pinned source can drive, as its `nic_support` hook reads it (epbuild.inputs.nic_support checks
each cell's NIC against it). Its own module, so the component folders can build one without importing the planner."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class NicOffer:
    """Values of the NIC's flag for the component (`nics.<nic>.flags.<name>`) or libibverbs providers
    (`nics.<nic>.provider`) the source can drive, and where they were read."""

    by: Literal["flag", "provider"]
    values: frozenset[str]
    source: str


def argparse_choices(script: str, option: str) -> tuple[str, ...] | None:
    """The `choices` of `<parser>.add_argument(option, ..., choices=[...])` in a script, read without running it
    (a real setup.py imports torch at the top); None if the option or its choices are not there."""
    for node in ast.walk(ast.parse(script)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
                and any(isinstance(a, ast.Constant) and a.value == option for a in node.args)):
            for kw in node.keywords:
                if kw.arg == "choices" and isinstance(kw.value, (ast.List, ast.Tuple)):
                    return tuple(str(e.value) for e in kw.value.elts if isinstance(e, ast.Constant))
    return None
