"""What a component is: one folder under epbuild/components/ (or an extra folder a matrix names) holding its pin
model, its stage template, its stage spec as data, its preflight hook, its in-image checks and its stand-in.

The spec says where the stage sits in the graph (`after`), when it applies (`when`, over cell facts), which cell
facts its text may read (`uses`: the rule that lets BuildKit share it across cells), and what it leaves for
`final` (a wheel, paths to copy, or an install into the system that later stages and `final` start from).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from epbuild.model.interface import Interface
from epbuild.model.pins import SourcePin
from epbuild.util.errors import EpbuildError
from epbuild.util.paths import ARCHIVES_DIR, DOWNLOADS_DIR

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "components"
TEMPLATE = "stage.Dockerfile.j2"
FIXTURE = "fixture"


@dataclass(frozen=True)
class PinnedArchive:
    """`member` (a folder) of the tar archive or wheel at `url` (https, file://, or a path relative to the matrix
    file), whose bytes must hash to `sha256`, as the named context `context`."""

    context: str
    url: str
    sha256: str
    member: str
    key: str
    """The matrix key that asked for it (named in every error)."""

    @property
    def dest(self) -> str:
        return f"{ARCHIVES_DIR}/{self.context}-{self.sha256[:16]}"

    @property
    def download(self) -> str:
        return f"{DOWNLOADS_DIR}/{self.sha256}{'.whl' if self.url.endswith('.whl') else '.tar'}"


class ComponentError(EpbuildError):
    pass


@dataclass(frozen=True)
class Wheel:
    """A wheel in /wheels/<component> that `final` installs; `distributions` are the names it installs under
    (the in-image checks look them up)."""

    distributions: tuple[str, ...]


@dataclass(frozen=True)
class Copy:
    """Paths `final` copies from the stage; each may name a pin option, e.g. "{install_prefix}"."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class System:
    """An install into the system (/usr): the stages after it and `final` start from this stage."""


Output = Wheel | Copy | System


class CellFacts(Mapping[str, Any]):
    """The cell facts a stage may read: only those its spec declares in `uses`, so that whatever the stage's text
    depends on is known to the graph (and two cells that agree on them share the stage)."""

    def __init__(self, facts: Mapping[str, Any], allowed: Iterable[str], stage: str) -> None:
        self._facts = facts
        self._allowed = frozenset(allowed)
        self._stage = stage

    def __getitem__(self, key: str) -> Any:
        if key not in self._allowed:
            raise ComponentError(f"stage {self._stage} reads cell fact {key!r}, which its spec does not declare in "
                                 f"`uses` ({', '.join(sorted(self._allowed)) or 'none'})")
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(k for k in self._facts if k in self._allowed)

    def __len__(self) -> int:
        return len(list(iter(self)))


@dataclass(frozen=True)
class StageInput:
    """What a component's context function sees: its own pin, every pin of the matrix, its cell facts."""

    pin: Any
    pins: Mapping[str, SourcePin]
    cell: CellFacts


def apt_update(valid_until: bool) -> str:
    """The `apt-get update` command of a stage that installs build packages (bases.<name>.apt_valid_until; a
    component stage reads the cell fact `base.apt_valid_until`)."""
    return "apt-get update" if valid_until else "apt-get -o Acquire::Check-Valid-Until=false update"


def _no_preflight(pin: SourcePin, cell: Mapping[str, Any]) -> list[str]:
    return []


def _no_vendor_build(pin: SourcePin, cell: Mapping[str, Any]) -> str | None:
    return None


def _no_source_check(pin: SourcePin, tree: Path) -> list[str]:
    return []


def _no_matrix_check(pin: SourcePin, matrix: Any) -> list[tuple[tuple[str | int, ...], str]]:
    return []


@dataclass(frozen=True)
class Component:
    name: str
    """The component's key under `components:` in the matrix and its stage's name."""
    pin: type[SourcePin]
    context: Callable[[StageInput], dict[str, Any]]
    output: Output
    after: tuple[str, ...] = ("base",)
    """The stage it builds FROM; a stage that does not apply in a cell is replaced by its own parent."""
    uses: tuple[str, ...] = ()
    when: Mapping[str, str] = field(default_factory=dict)
    """Cell facts that must hold for the stage to apply, e.g. {"nic.rdma_core": "source"}."""
    required: bool = True
    archs: tuple[str, ...] | None = None
    """The only GPU archs its upstream build keeps (None: any)."""
    nic_flag: tuple[str, ...] | None = None
    """The values its upstream build has for a NIC (a flag it accepts, a backend it builds); each NIC of the
    matrix names its own in nics.<nic>.flags.<component>: the cell fact `nic.flag` for a stage that uses it,
    and what the image checks expect."""
    sparse_path: str | None = None
    """The pin option naming the only folder of the repository the stage needs (fetched blob-less, exported
    sparse)."""
    preflight: Callable[[SourcePin, Mapping[str, Any]], list[str]] = _no_preflight
    """Checks before a build; returns problems. Empty by default."""
    vendor_build: Callable[[SourcePin, Mapping[str, Any]], str | None] = _no_vendor_build
    """In a cell whose NIC has vendor userspace: what the stage's build takes from it (a value the stage reads as
    the cell fact `nic.vendor_build`, e.g. MoRI's USE_BNXT), or None. Where it is not None the stage builds FROM
    the `vendor` stage, so it is per NIC there and shared across NICs everywhere else."""
    source_check: Callable[[SourcePin, Path], list[str]] = _no_source_check
    """Checks of the exported source tree at the pin, after the fetch and before any stage runs; returns
    problems (MoRI: the NIC flags its setup.py reads are the ones the pin declares)."""
    nic_support: Callable[[SourcePin, Path], Any] | None = None
    """What the exported source at the pin can drive, read before any build (an epbuild.inputs.nic_support.NicOffer:
    DeepEP's --nic choices, rocSHMEM's GDA backends, MoRI's providers), or None where it cannot tell; each cell's
    NIC is checked against it (epbuild.inputs.nic_support)."""
    matrix_check: Callable[[SourcePin, Any], list[tuple[tuple[str | int, ...], str]]] = _no_matrix_check
    """Checks of the pin against the rest of the matrix when it is loaded; returns (key path under
    components.<name>, problem) pairs (MoRI: each provider its nic_build_flags names is some NIC's provider)."""
    record: Callable[[SourcePin], dict[str, Any]] = lambda pin: {}
    """Extra facts the cell record carries for this component (e.g. rdma-core's release)."""
    interface: Callable[[StageInput], Interface] | None = None
    """What the stage passes to the source (flags, environment, files), checked at the pin after the fetch."""
    scm_distribution: str | None = None
    """The distribution whose setuptools-scm version the host computes from the pin's history; the stage reads it
    from the named context `scm-<name>` (the exported tree has no .git)."""
    scm_fallback: str | None = None
    """The component's own setuptools-scm `fallback_version` (used only where no tag is reachable)."""
    archives: Callable[[SourcePin], tuple[PinnedArchive, ...]] = lambda pin: ()
    """Source archives the stage reads as named contexts (fetched and checked on the host: epbuild.inputs.archives)."""
    git_head: bool = False
    """The component's setup.py asks git for HEAD (DeepEP's version suffix); the stage reads the pin's git
    directory from the named context `git-<name>` (epbuild.inputs.git_head)."""
    build_requirements: tuple[str, ...] = ()
    """Requirement files in the source, resolved on the host against the base (with the source's own
    `[build-system] requires` and `setup_requires`) into the wheelhouse context `wheels-<name>`; `pyproject.toml`
    alone: only its `[build-system] requires`."""
    runtime_requirements: Callable[[Path], tuple[str, ...]] | None = None
    """The requirement files the component's wheel installs with it, found in the exported source (vLLM: what its
    setup.py passes to install_requires): resolved on the host against the base into the final stage's
    wheelhouse `runtime-wheels`, installed before the wheels (their own install is --no-deps)."""
    native_inputs: Callable[[Path], tuple[str, ...]] | None = None
    """The paths of the source its native step compiles from, found in the exported source: copied on the host
    into the context `native-<name>`, so a change anywhere else leaves that step cached."""
    cargo_workspace: Callable[[SourcePin], str | None] = lambda pin: None
    """The folder of the source whose Cargo.lock names the crates the stage compiles (None: no Rust at this pin's
    settings): vendored on the host into the context `crates-<name>` (epbuild.inputs.cargo_vendor), and the base's
    rustc_version checked against the pin's rust-toolchain.toml before any build."""
    folder: Path = Path()

    @property
    def has_vendor_build(self) -> bool:
        """Whether the spec gives a vendor_build (without one it is None in every cell)."""
        return self.vendor_build is not _no_vendor_build

    @property
    def field_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def template(self) -> Path:
        return self.folder / TEMPLATE

    @property
    def fixture(self) -> Path:
        return self.folder / FIXTURE

    def checks(self) -> list[Path]:
        return sorted(self.folder.glob("test_*.py"))

    def copies(self, pin: SourcePin) -> list[str]:
        if not isinstance(self.output, Copy):
            return []
        return [path.format(**pin.model_dump()) for path in self.output.paths]

    def sparse_paths(self, pin: SourcePin) -> list[str]:
        return [getattr(pin, self.sparse_path)] if self.sparse_path else []


@dataclass(frozen=True, eq=False)
class Registry:
    """The components a matrix can pin, by name, in the order their folders were found."""

    components: tuple[Component, ...]

    def __getitem__(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def names(self) -> list[str]:
        return [c.name for c in self.components]


def _load(folder: Path) -> Component:
    init = folder / "__init__.py"
    if not init.is_file():
        raise ComponentError(f"component folder {folder} has no __init__.py defining COMPONENT")
    if folder.parent == BUILTIN_DIR:
        module_name = f"epbuild.components.{folder.name}"
    else:
        module_name = f"epbuild_extra_components.{folder.name}"
    module = sys.modules.get(module_name)
    if module is None or Path(getattr(module, "__file__", "")).resolve() != init.resolve():
        spec = importlib.util.spec_from_file_location(module_name, init, submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    component = getattr(module, "COMPONENT", None)
    if not isinstance(component, Component):
        raise ComponentError(f"{init}: defines no COMPONENT = Component(...)")
    if not component.template.is_file():
        raise ComponentError(f"component {component.name}: {component.template} is missing")
    return component


def discover(extra_dirs: Iterable[Path] = ()) -> Registry:
    """Every component folder under epbuild/components/, then under each extra folder (found once per set of
    folders, so one set always gives the same registry and the same matrix model)."""
    return _discover(tuple(Path(d).resolve() for d in extra_dirs))


@cache
def _discover(extra_dirs: tuple[Path, ...]) -> Registry:
    found: list[Component] = []
    for parent in (BUILTIN_DIR, *extra_dirs):
        if not parent.is_dir():
            raise ComponentError(f"component folder {parent} does not exist")
        for folder in sorted(p for p in parent.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
            component = _load(folder)
            if component.name in {c.name for c in found}:
                raise ComponentError(f"component {component.name} is defined twice ({folder})")
            found.append(component)
    return Registry(tuple(found))
