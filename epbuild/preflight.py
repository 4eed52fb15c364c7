"""Before a build: each component's own preflight hook (its spec's `preflight`, checks such as "the stand-in at
this pin rejects that flag") over every cell it is built in; one error listing every problem, so nothing is
fetched or built for a matrix a component already knows will fail."""

from __future__ import annotations

from collections.abc import Iterable

from epbuild.errors import EpbuildError
from epbuild.plan import CellPlan
from epbuild.stagegraph import built_pins


class PreflightError(EpbuildError):
    pass


def problems(plans: Iterable[CellPlan]) -> list[str]:
    out: list[str] = []
    for plan in plans:
        for name, pin in built_pins(plan).items():
            out += [f"{plan.cell.name}: {name}: {p}" for p in plan.registry[name].preflight(pin, plan.facts_for(name))]
    return list(dict.fromkeys(out))


def check(plans: Iterable[CellPlan]) -> None:
    found = problems(plans)
    if found:
        raise PreflightError("preflight checks failed; nothing was built:\n  " + "\n  ".join(found))
