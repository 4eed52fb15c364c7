"""NIC support read from each component's source at its pin, before any build: what the pinned source offers for a
NIC (DeepEP: its setup.py's `--nic` choices; rocSHMEM: the GDA backends its all_backends script turns on; MoRI: its
RDMA provider folders), against what each cell's NIC needs. A cell whose NIC a component cannot drive fails here,
naming the component, pin, NIC and what the pin offers, unless the matrix accepts it with a reason
(`nics.<nic>.unsupported.<component>`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from epbuild.model.nic_offer import NicOffer
from epbuild.model.plan import CellPlan
from epbuild.model.stagegraph import built_pins


def needed(plan: CellPlan, component: str, offer: NicOffer) -> str | None:
    nic = plan.nic
    return nic.flags.get(component) if offer.by == "flag" else nic.provider


def problems(plans: Iterable[CellPlan], trees: Mapping[str, Path]) -> list[str]:
    """One line per cell and component whose pinned source cannot drive the cell's NIC (and is not accepted)."""
    out: list[str] = []
    offers: dict[str, NicOffer | None] = {}
    for plan in plans:
        for name, pin in built_pins(plan).items():
            hook = plan.registry[name].nic_support
            if hook is None or name not in trees:
                continue
            if name not in offers:
                offers[name] = hook(pin, trees[name])
            offer = offers[name]
            if offer is None:
                continue
            want = needed(plan, name, offer)
            if want is None or want in offer.values or name in plan.nic.unsupported:
                continue
            what = "--nic value" if offer.by == "flag" and name == "deepep" else offer.by
            out.append(f"{plan.cell.name}: {name} at {pin.commit[:12]} cannot drive NIC {plan.cell.nic} "
                       f"({plan.nic.description or plan.nic.provider}): it needs {what} {want!r}, and the pin "
                       f"offers {', '.join(sorted(offer.values)) or 'none'} ({offer.source}). Move the pin to one "
                       f"that has it, or accept it with nics.{plan.cell.nic}.unsupported.{name}: <reason>")
    return list(dict.fromkeys(out))
