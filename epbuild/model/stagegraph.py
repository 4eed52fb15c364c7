"""The stage graph as data: `base`, one stage per component (from its folder's spec), `final`; each stage's
parent, what it leaves for `final`, when it applies and which cell facts its text uses. A component with build
requirements gets a stage before its own, `<component>-requirements`, that installs them: it reads no cell fact,
so every cell of one base (and parent) shares it, in one bake and across a fleet's agents alike.

Everything about stages derives from here: the FROM lines and the order of the rendered Dockerfile, the bake
file's named contexts, the pins a cell builds, stage identities (which stages of a set of cells are the same
work for BuildKit: the build uses them to fail every cell that shares a failed stage; epbuild.build.run_steps refines
them to single RUN steps for the benchmarks), the sharing property test and the README's stage diagram.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol, TypeVar

from epbuild.model.component import Component, ComponentError, Copy, Registry, System, Wheel
from epbuild.model.pins import SourcePin
from epbuild.model.plan import CellPlan

BASE, VENDOR, FINAL = "base", "vendor", "final"
REQUIREMENTS = "-requirements"
BASE_USES = ("base.image", "base.rocm_path", "base.build_packages", "base.apt_valid_until")
VENDOR_USES = ("nic.vendor",)
WHEELS_DIR = "/wheels"
T = TypeVar("T")


@dataclass(frozen=True)
class Stage:
    name: str
    after: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    when: Mapping[str, str] = field(default_factory=dict)
    component: Component | None = None
    requirements_of: Component | None = None
    """For `<component>-requirements`: the component whose build requirements it installs from its wheelhouse."""

    @property
    def source(self) -> str | None:
        """The component whose source the stage mounts as the named context `src-<source>`."""
        return self.component.name if self.component else None

    @property
    def owner(self) -> Component | None:
        """The component the stage builds or prepares (None for base, vendor and final)."""
        return self.component or self.requirements_of


def requirements_stage(component: str) -> str:
    return component + REQUIREMENTS


def first_stage(component: Component) -> str:
    """The component's first stage: its requirements stage where it has build requirements, else its own."""
    return requirements_stage(component.name) if component.build_requirements else component.name


def component_of(stage: str) -> str:
    """The component (or base, vendor, final) a stage belongs to: `<component>-requirements` is the component's."""
    return stage.removesuffix(REQUIREMENTS)


@cache
def graph(registry: Registry) -> list[Stage]:
    """Every stage: base, the components (each after its parents, else in folder order), then final."""
    components = {c.name: c for c in registry.components}
    ordered: list[Stage] = [Stage(BASE, uses=BASE_USES)]
    placed = {BASE}
    system = tuple(c.name for c in registry.components if isinstance(c.output, System))

    def place(c: Component, path: tuple[str, ...]) -> None:
        if c.name in placed:
            return
        for name in c.after:
            if name in path:
                raise ComponentError(f"the stage graph has a cycle: {' -> '.join([*path, name])}")
            if name not in placed:
                if name not in components:
                    raise ComponentError(f"component {c.name} comes after {name!r}, which is no stage")
                place(components[name], (*path, c.name))
        if c.build_requirements:
            # Installed before any source, in a stage of its own: the same for every arch, so one agent builds
            # it and the others import it (upstream installs them first too: Dockerfile.rocm@00305ee5).
            ordered.append(Stage(first_stage(c), c.after, (), c.when, requirements_of=c))
        ordered.append(Stage(c.name, (first_stage(c),) if c.build_requirements else c.after, c.uses, c.when, c))
        placed.add(c.name)

    # The NIC's vendor userspace goes on top of the system installs (rdma-core), before every stage that may build
    # on it; `final` starts from it (or, where it does not apply, from what it would have started from).
    for name in system:
        place(components[name], ())
    ordered.append(Stage(VENDOR, after=system[-1:] or (BASE,), uses=VENDOR_USES))
    placed.add(VENDOR)
    for component in registry.components:
        place(component, ())
    ordered.append(Stage(FINAL, after=(VENDOR,), uses=("cell",)))
    return ordered


@cache
def _by_name(registry: Registry) -> dict[str, Stage]:
    return {s.name: s for s in graph(registry)}


def applies(stage: Stage, plan: CellPlan) -> bool:
    if stage.owner is not None and stage.owner.name not in plan.pins:
        return False
    if stage.name == VENDOR and plan.vendor is None:
        return False
    return all(plan.facts.get(k) == v for k, v in stage.when.items())


@cache
def _when_facts(registry: Registry) -> tuple[str, ...]:
    return tuple(sorted({name for s in graph(registry) for name in s.when}))


def stages_for(plan: CellPlan) -> list[Stage]:
    if "stages" not in plan.memo:
        # What `applies` reads besides the matrix's pins (one set for every cell of a matrix): whether the NIC has
        # a vendor userspace and the facts of the stages' `when`. Cells that agree on them share the list.
        shared_key = ("stages", plan.vendor is None, *(plan.facts.get(name) for name in _when_facts(plan.registry)))
        if shared_key not in plan.shared:
            stages = [s for s in graph(plan.registry) if applies(s, plan)]
            plan.shared[shared_key] = (stages, frozenset(s.name for s in stages))
        plan.memo["stages"], plan.memo["applied"] = plan.shared[shared_key]
    return list(plan.memo["stages"])


def applied_names(plan: CellPlan) -> frozenset[str]:
    """The names of the stages that apply to the cell (stages_for's, as a set)."""
    try:
        return plan.memo["applied"]
    except KeyError:
        stages_for(plan)
        return plan.memo["applied"]


def parent(stage: Stage, plan: CellPlan) -> str | None:
    """The stage it builds FROM in this cell: its parent, or, where that does not apply, the parent's own parent
    (None for base, which starts from the base image)."""
    if stage.name in applied_names(plan):
        return parents(plan)[stage.name]
    return _parent(stage, applied_names(plan), _from_vendor(plan, [stage]), _by_name(plan.registry))


def parents(plan: CellPlan) -> dict[str, str | None]:
    """parent() of each stage that applies to the cell, by name."""
    try:
        return plan.memo["parents"]
    except KeyError:
        pass
    # They follow from the stages that apply and which of them start from `vendor`: found once per matrix for each.
    applied, from_vendor = applied_names(plan), _from_vendor(plan, stages_for(plan))
    key = ("parents", applied, from_vendor)
    if key not in plan.shared:
        by_name = _by_name(plan.registry)
        plan.shared[key] = {name: _parent(by_name[name], applied, from_vendor, by_name) for name in applied}
    found: dict[str, str | None] = plan.shared[key]
    plan.memo["parents"] = found
    return found


def _from_vendor(plan: CellPlan, stages: list[Stage]) -> frozenset[str]:
    """Those of `stages` that start from `vendor`: a component built against the NIC vendor's library starts from
    it (its first stage does)."""
    if plan.vendor is None:  # no vendor userspace: vendor_build is None for every component
        return frozenset()
    firsts = _vendor_first_stages(plan.registry)
    return frozenset(s.name for s in stages if (owner := firsts.get(s.name)) is not None
                     and plan.vendor_build(owner) is not None)


@cache
def _vendor_first_stages(registry: Registry) -> dict[str, str]:
    """{first stage: component} of the components that declare a vendor_build (the others' is always None):
    asking every stage of every cell took a twentieth of a 1,000-cell render."""
    return {first_stage(c): c.name for c in registry.components if c.has_vendor_build}


def _parent(stage: Stage, applied: frozenset[str], from_vendor: frozenset[str],
            by_name: dict[str, Stage]) -> str | None:
    return VENDOR if stage.name in from_vendor else _nearest_applied(stage, applied, by_name)


def _nearest_applied(stage: Stage, applied: frozenset[str], by_name: dict[str, Stage]) -> str | None:
    candidates = list(stage.after)
    while candidates:
        name = candidates.pop(0)
        if name in applied:
            return name
        candidates = list(by_name[name].after) + candidates
    return None


def _per_stage_set(plan: CellPlan, name: str, derive: Callable[[list[Stage]], T]) -> T:
    """What `derive` makes of the cell's stages, found once per matrix for each set of stages that apply (with
    the matrix's pins, which are the same for every cell of it)."""
    key = (name, applied_names(plan))
    if key not in plan.shared:
        plan.shared[key] = derive(stages_for(plan))
    return plan.shared[key]


def built_pins(plan: CellPlan) -> dict[str, SourcePin]:
    """The pins of the components this cell builds (a cell without rdma-core's stage does not build it), in build
    order."""
    return dict(_per_stage_set(plan, "built_pins",
                               lambda stages: {s.source: plan.pins[s.source] for s in stages if s.source}))


def wheel_dir(name: str) -> str:
    return f"{WHEELS_DIR}/{name}"


def wheel_stages(plan: CellPlan) -> list[str]:
    """Stages that leave a wheel in /wheels/<stage> for `final` to install."""
    return list(_per_stage_set(plan, "wheel_stages", lambda stages: [
        s.name for s in stages if s.component and isinstance(s.component.output, Wheel)]))


def copies(plan: CellPlan) -> list[tuple[str, str]]:
    """(stage, path) of every path `final` copies from a stage."""
    return list(_per_stage_set(plan, "copies", lambda stages: [
        (s.name, path) for s in stages if s.component and isinstance(s.component.output, Copy)
        for path in s.component.copies(plan.pins[s.name])]))


def distributions(plan: CellPlan) -> list[str]:
    """The distribution names the cell's wheels may install under."""
    return list(_per_stage_set(plan, "distributions", lambda stages: [
        d for s in stages if s.component and isinstance(s.component.output, Wheel)
        for d in s.component.output.distributions]))


def inputs(stage: Stage, plan: CellPlan) -> list[str]:
    """The stages whose files the stage reads besides its parent: final's mounts and copies."""
    if stage.name != FINAL:
        return []
    return list(dict.fromkeys([*wheel_stages(plan), *(name for name, _ in copies(plan))]))


class Rendered(Protocol):
    # Read-only members, so a frozen dataclass (epbuild/render/dockerfiles.py's RenderedCell) meets the protocol.
    @property
    def plan(self) -> CellPlan: ...

    @property
    def stages(self) -> dict[str, str]: ...


def stage_identities(rc: Rendered) -> dict[str, str]:
    """stage -> identity: its text plus the identities of everything it builds on (its FROM parent, the stages it
    mounts or copies from), its source's commit and, for base, its image. Equal identities are exactly the
    stages one solve builds once."""
    plan = rc.plan
    ids: dict[str, str] = {}
    for stage in stages_for(plan):  # build order: parents come first
        text = rc.stages[stage.name]
        above = parent(stage, plan)
        parts = [text, ids[above] if above else plan.base.image]
        parts += [ids[name] for name in inputs(stage, plan)]
        if stage.owner is not None:
            # The source, or the wheelhouse resolved from the requirement files at that commit.
            parts.append(plan.pins[stage.owner.name].commit)
        if stage.name == VENDOR:
            parts.append(plan.facts["nic.vendor"])  # the verified .debs it installs follow from the pins
        if stage.name == FINAL:
            parts.append(plan.cell.name)  # final COPYs files of the cell's own folder
        ids[stage.name] = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return ids
