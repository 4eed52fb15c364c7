"""The build matrix: its schema (pydantic models) and loading it from YAML.

The models are the single source of truth for what matrix.yaml may say; `invoke schema` exports them as JSON
Schema for editors. The `components` section is built from the component folders (epbuild/components/ plus any
the matrix names in `component_dirs`), so a new component brings its own pin model.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from epbuild.model.component import ComponentError, Registry, discover
from epbuild.model.crosscheck import cross_check
from epbuild.model.patterns import Arch, BaseName, EnvName, EnvValue, NicName
from epbuild.model.pins import SourcePin, Strict
from epbuild.model.sections import (
    DEFAULT_RUNTIME_ENV,
    ArchInfo,
    Axes,
    BaseSettings,
    CellSelector,
    CiSettings,
    ImageSettings,
    NicInfo,
    PythonSettings,
    ReferenceSettings,
)
from epbuild.model.yamlfile import KeyPath, format_key, load_yaml
from epbuild.util.errors import MatrixError, Problem


class ComponentsBase(Strict):
    registry: ClassVar[Registry]

    def pins(self) -> dict[str, SourcePin]:
        """Every configured component by its name, in the order of the component folders."""
        out: dict[str, SourcePin] = {}
        for component in self.registry.components:
            pin = getattr(self, component.field_name)
            if pin is not None:
                out[component.name] = pin
        return out


class MatrixBase(Strict):
    """matrix.yaml: the axes, the facts about each arch, NIC and base, and the pinned components."""

    registry: ClassVar[Registry]
    if TYPE_CHECKING:
        # matrix_model() adds the field, typed by the registry's pin models.
        components: ComponentsBase
    component_dirs: list[str] = Field(
        default_factory=list, description="Extra component folders (relative to the matrix file), each holding "
        "one folder per component as epbuild/components/ does.")
    image: ImageSettings
    bases: dict[BaseName, BaseSettings] = Field(min_length=1)
    axes: Axes
    exclude: list[CellSelector] = Field(default_factory=list)
    include: list[CellSelector] = Field(default_factory=list)
    archs: dict[Arch, ArchInfo]
    nics: dict[NicName, NicInfo]
    ci: CiSettings = Field(default_factory=CiSettings, description="Where the CI pipelines build.")
    python: PythonSettings = Field(default_factory=PythonSettings,
                                   description="How Python requirements are resolved on the host.")
    prepare: Literal["offline-example"] | None = Field(
        None,
        description="A built-in recipe `invoke build` runs first: `offline-example` makes the example's local "
        "base images and stand-in repositories when they are missing.",
    )
    runtime_env: dict[EnvName, EnvValue] = Field(
        default_factory=lambda: dict(DEFAULT_RUNTIME_ENV), description="Environment of the final image."
    )
    reference: ReferenceSettings | None = Field(
        None, description="The reference build the pins follow (`invoke pins` compares the matrix with it).")

    @property
    def base_names(self) -> list[str]:
        return list(self.axes.base) or list(self.bases)


@cache
def matrix_model(registry: Registry) -> type[MatrixBase]:
    """The matrix model for a set of components: `components.<name>` takes each one's own pin model."""
    fields: dict[str, Any] = {}
    for c in registry.components:
        default = ... if c.required else None
        annotation = c.pin if c.required else (c.pin | None)
        fields[c.field_name] = (annotation, Field(default, alias=c.name))
    components = create_model("Components", __base__=ComponentsBase, **fields)
    components.registry = registry
    model = create_model("Matrix", __base__=MatrixBase, components=(components, ...))
    model.registry = registry
    return model


Matrix = matrix_model(discover())
"""The matrix model for the built-in components."""


class LoadedMatrix:
    """A validated matrix and the file it came from (relative repository URLs resolve against it)."""

    def __init__(self, path: Path, model: MatrixBase) -> None:
        self.path = path
        self.model = model

    @property
    def directory(self) -> Path:
        return self.path.parent


def load_matrix(path: Path) -> LoadedMatrix:
    """Reads and validates matrix.yaml, raising MatrixError with every problem found."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise MatrixError(path, [Problem("", "the matrix must be a mapping of keys (image, bases, axes, ...)", 1)])
    extra = doc.data.get("component_dirs") or []
    try:
        registry = discover([(path.parent / str(d)).resolve() for d in extra]) if extra else discover()
    except ComponentError as exc:
        raise MatrixError(path, [Problem("component_dirs", str(exc), doc.line_of(("component_dirs",)))]) from None
    model_class = matrix_model(registry)
    try:
        model = model_class.model_validate(doc.data)
    except ValidationError as exc:
        raise MatrixError(path, [_problem(err, doc.line_of, model_class) for err in exc.errors()]) from None
    problems = [Problem(format_key(key), msg, doc.line_of(key)) for key, msg in cross_check(model)]
    if problems:
        raise MatrixError(path, problems)
    return LoadedMatrix(path, model)


def _problem(err: Any, line_of: Any, model_class: type[BaseModel]) -> Problem:
    loc: KeyPath = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = loc[:-1]
        allowed = _allowed_keys(model_class, parent)
        message = f"unknown key {loc[-1]!r}" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "literal_error":
        message = f"{value!r} is not allowed; expected {err['ctx']['expected']}"
    elif loc and loc[-1] in ("commit", "digest") and isinstance(value, (int, float)) and not isinstance(value, bool):
        # YAML reads an all-digit commit (or one like 1e100) as a number, and a leading 0 is lost on the way.
        message = (f"YAML read this {loc[-1]} as the number {value!r}; quote it, e.g. {loc[-1]}: \"<the hex "
                   "digits exactly as git prints them>\"")
    elif kind == "value_error":
        message = str(err["ctx"]["error"])
    else:
        message = f"{err['msg']} (got {value!r})" if not isinstance(value, (dict, list)) else err["msg"]
    # pydantic reports dict-key failures with a trailing '[key]' marker; drop it from the path.
    loc = tuple(p for p in loc if p != "[key]")
    return Problem(format_key(loc), message, line_of(loc))


def _allowed_keys(model_class: type[BaseModel], parent: KeyPath) -> list[str]:
    """The keys a mapping at `parent` may hold, found by walking the models' type annotations."""
    node: Any = model_class
    for part in parent:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = next((f for n, f in node.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            node = _unwrap_optional(field.annotation)
        elif getattr(node, "__origin__", None) in (dict, list):
            node = _unwrap_optional(node.__args__[-1])
        else:
            return []
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if getattr(annotation, "__origin__", None) not in (dict, list) and len(args) == 1:
        return args[0]
    return annotation
