"""The trees a build builds, one per component: a pin's exported tree, or a local tree given with `--source`, and
what the pre-bake steps (epbuild/build/prebake.py) act on: the cells, the components in scope (a build: all of them;
`invoke bump`: the one it moves) and each component's tree, under the name its prepared inputs are stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from epbuild.inputs.local_source import LocalTree
from epbuild.inputs.source_requests import ExportedSource
from epbuild.model.component import Component
from epbuild.model.stagegraph import built_pins
from epbuild.render.bakefile import RUNTIME_WHEELS_CONTEXT, component_contexts, runtime_pins
from epbuild.render.dockerfiles import RenderedCell, Rendering
from epbuild.util.commands import Runner
from epbuild.util.paths import runtime_wheelhouse_dir, source_dir


@dataclass(frozen=True)
class SourceTree:
    """The tree one component is built from, as every pre-bake step and the stage read it."""

    component: str
    path: Path
    """The exported tree: the stage's `src-<component>` context."""
    ref: str
    """What the inputs prepared from the tree (scm version, git directory, wheelhouse, crates) are stored under:
    the pin's commit, or the local tree's ref."""
    where: str
    """How messages name it: `deepep at 5d90af8b1234`, or `vllm from the local tree /home/me/vllm`."""
    local: LocalTree | None = None

    @classmethod
    def pinned(cls, root: Path, component: str, commit: str) -> SourceTree:
        return cls(component, root / source_dir(component, commit), commit, f"{component} at {commit[:12]}")

    @classmethod
    def of_local(cls, tree: LocalTree) -> SourceTree:
        return cls(tree.component, tree.export, tree.ref, f"{tree.component} from the local tree {tree.path}", tree)


@dataclass
class Trees:
    """The fetched pins and the exported local trees of one build."""

    pinned: list[ExportedSource] = field(default_factory=list)
    local: dict[str, LocalTree] = field(default_factory=dict)

    def by_component(self, root: Path, cells: list[RenderedCell]) -> dict[str, SourceTree]:
        out = {name: SourceTree.of_local(tree) for name, tree in self.local.items()}
        for rc in cells:
            for name, pin in built_pins(rc.plan).items():
                if name not in out:
                    out[name] = SourceTree.pinned(root, name, pin.commit)
        return out


@dataclass
class Scope:
    """What the pre-bake steps act on."""

    rendering: Rendering
    cells: list[RenderedCell]
    root: Path
    runner: Runner
    mirrors: dict[str, str]
    """Per-component URL overrides (--mirror, EPBUILD_MIRROR_<COMPONENT>)."""
    trees: dict[str, SourceTree]
    only: frozenset[str] | None = None
    """The components in scope (`invoke bump`: the one it moves); None: every component the cells build."""
    pull_bases: bool = True
    """False (`invoke bump`): a base image the engine does not have is not pulled, and what needs it (the
    wheelhouse, resolved for the base's Python) is reported not checked."""

    def pairs(self) -> Iterator[tuple[RenderedCell, Component]]:
        """Each (cell, component) in scope, in build order."""
        for rc in self.cells:
            for name in built_pins(rc.plan):
                if self.only is None or name in self.only:
                    yield rc, rc.plan.registry[name]

    def components(self) -> Iterator[tuple[RenderedCell, Component]]:
        """The first cell of each component in scope (for what is prepared once per tree)."""
        seen: set[str] = set()
        for rc, c in self.pairs():
            if c.name not in seen:
                seen.add(c.name)
                yield rc, c

    def tree(self, component: str) -> SourceTree:
        return self.trees[component]

    def folder(self, rc: RenderedCell, component: Component) -> Path:
        """The component's folder inside its tree (rocSHMEM lives under its sparse `path`)."""
        return self.trees[component.name].path / "".join(component.sparse_paths(rc.plan.pins[component.name]))


def local_contexts(rc: RenderedCell, local: dict[str, LocalTree], root: Path) -> dict[str, str]:
    """The named contexts a build lays over the committed bake file for the cell's components built from local
    trees: the exported tree and everything prepared from it, in place of the pin's."""
    out: dict[str, str] = {}
    for name, tree in local.items():
        if name in built_pins(rc.plan):
            contexts = component_contexts(rc.plan, name, tree.ref, str(tree.export.resolve()))
            out.update({key: str((root / value).resolve()) for key, value in contexts.items()})
    runtime = runtime_pins(rc.plan)
    if any(name in local for name in runtime):
        refs = {name: local[name].ref if name in local else commit for name, commit in runtime.items()}
        out[RUNTIME_WHEELS_CONTEXT] = str((root / runtime_wheelhouse_dir(refs, rc.plan.cell.base)).resolve())
    return out
