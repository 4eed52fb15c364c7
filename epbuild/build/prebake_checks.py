"""The pre-bake steps that check, each over a Scope (epbuild/build/source_trees.py): the components' own checks of
the matrix, every flag and variable against the tree each component is built from (a pin's export or a local
tree), the components' own checks of that tree, each cell's NIC against what the tree can drive, and the base's
Rust toolchain against the tree's rust-toolchain.toml.

Each step returns one line saying what it checked ("" where nothing was in scope), raises an EpbuildError naming
what failed, or NotChecked where it could not run at all. epbuild/build/prebake.py runs them, in one order, for
`invoke build` and `invoke bump` alike, before the steps that prepare (epbuild/build/stageinputs.py)."""

from __future__ import annotations

from dataclasses import fields, replace

from epbuild.build.source_trees import Scope
from epbuild.inputs import nic_support as epbuild_nic_support
from epbuild.inputs import preflight, rust_toolchain
from epbuild.model.component import CellFacts, Component, StageInput
from epbuild.model.interface import Use
from epbuild.util.errors import EpbuildError


class NotChecked(EpbuildError):
    """A step that could not run at all (no engine to ask the base, no network to the index): the check says
    nothing about the sources, so a report must not call it ok."""


def _cells(scope: Scope, components: set[str]) -> str:
    cells = {rc.cell.name for rc, c in scope.pairs() if c.name in components}
    return f"{len(cells)} cell(s), {', '.join(sorted(components))}"


def _default(hook: str) -> object:
    """What a component without its own `hook` has (epbuild/model/component.py): a check of nothing, which a report must
    not list as checked."""
    return next(f.default for f in fields(Component) if f.name == hook)


def hooks(scope: Scope) -> str:
    """Pass 1: each component's own preflight hook over every cell it is built in."""
    preflight.check((rc.plan for rc in scope.cells), scope.only)
    checked = {c.name for _, c in scope.pairs() if c.preflight is not _default("preflight")}
    return _cells(scope, checked) if checked else ""


def interfaces(scope: Scope) -> str:
    """Pass 2: every flag, environment variable, CMake option and file a stage passes, against the tree it builds
    from; raises PreflightError naming each mismatch."""
    checks = []
    checked: set[str] = set()
    for rc, c in scope.pairs():
        if c.interface is None:
            continue
        pin = rc.plan.pins[c.name]
        facts = CellFacts(rc.plan.facts_for(c.name), c.uses, c.name)
        interface = c.interface(StageInput(pin, rc.plan.pins, facts))
        files = [Use("file", name, f"the {c.name} stage's build requirements") for name in c.build_requirements]
        interface = replace(interface, uses=[*interface.uses, *files])
        checks.append((scope.tree(c.name).where, scope.folder(rc, c), interface))
        checked.add(c.name)
    if scope.runner.dry_run:
        scope.runner.record("# preflight: every flag, variable and file each stage passes, against its source tree")
        return ""
    preflight.check_sources(checks, scope.rendering.matrix.path)
    return _cells(scope, checked) if checked else ""


def source_checks(scope: Scope) -> str:
    """Each component's checks of its tree (its spec's `source_check`, e.g. MoRI's NIC flags): what the matrix
    says about a pin that only the source itself can confirm."""
    if scope.runner.dry_run:
        return ""
    found: list[str] = []
    checked: list[str] = []
    for rc, c in scope.components():
        if c.source_check is _default("source_check"):
            continue
        tree = scope.tree(c.name)
        found += [f"{tree.where}: {problem}" for problem in c.source_check(rc.plan.pins[c.name], tree.path)]
        checked.append(c.name)
    if found:
        raise preflight.PreflightError("the sources disagree with the matrix; nothing was built:\n  "
                                       + "\n  ".join(found))
    return ", ".join(checked)


def nic_support(scope: Scope) -> str:
    """Whether each cell's NIC is one its components can drive at the trees they are built from (DeepEP's --nic
    choices, MoRI's providers, rocSHMEM's GDA backends: epbuild/inputs/nic_support.py); raises PreflightError naming cell,
    component, NIC and what the tree offers."""
    trees = {name: scope.tree(name).path for _, c in scope.components() for name in (c.name,)}
    found = epbuild_nic_support.problems((rc.plan for rc in scope.cells), trees)
    if found:
        raise preflight.PreflightError("the sources to be built cannot drive these cells' NICs; nothing was built:\n  "
                                       + "\n  ".join(found))
    checked = {c.name for _, c in scope.pairs() if c.nic_support is not None}
    return _cells(scope, checked) if checked else ""


def rust_toolchains(scope: Scope) -> str:
    """Every stage that compiles Rust: the base's rustc (bases.<name>.rustc_version) must satisfy the tree's
    rust-toolchain.toml; raises PreflightError naming component, tree and keys."""
    if scope.runner.dry_run:
        return ""
    found: list[str] = []
    checked: set[str] = set()
    for rc, c in scope.pairs():
        pin = rc.plan.pins[c.name]
        if c.cargo_workspace(pin) is None:
            continue
        checked.add(c.name)
        asked = rust_toolchain.channel(scope.folder(rc, c))
        if asked is None:
            continue
        why = rust_toolchain.problem(asked[0], rc.plan.base.rustc_version)
        if why is not None:
            found.append(f"{scope.tree(c.name).where}: {asked[1]}: {why} (bases.{rc.plan.cell.base}."
                         f"rustc_version; the Rust step is components.{c.field_name}.rust_frontend)")
    if found:
        raise preflight.PreflightError(f"preflight: {scope.rendering.matrix.path}: the bases cannot compile the "
                                       "Rust to be built; nothing was built.\n  " + "\n  ".join(dict.fromkeys(found)))
    return _cells(scope, checked) if checked else ""
