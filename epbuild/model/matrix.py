"""The build matrix: its schema (pydantic models) and loading it from YAML.

The models are the single source of truth for what matrix.yaml may say; `invoke schema` exports them as JSON
Schema for editors. The `components` section is built from the component folders (epbuild/components/ plus any
the matrix names in `component_dirs`), so a new component brings its own pin model.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, create_model

from epbuild.model.component import ComponentError, Registry, discover
from epbuild.model.crosscheck import cross_check
from epbuild.model.patterns import (
    AbsPath,
    AptPackage,
    Arch,
    ArchiveUrl,
    ArchValue,
    BaseName,
    Digest,
    EnvName,
    EnvValue,
    FlagValue,
    HexId,
    ImageName,
    ImageRef,
    LibName,
    NicName,
    PlainText,
    PoolName,
    Reason,
    RelPath,
    RustChannel,
    Tag,
    Version,
)
from epbuild.model.patterns import Registry as RegistryName
from epbuild.model.pins import SourcePin, Strict
from epbuild.model.vendor import VendorUserspace, none_in_schema, none_or_vendor
from epbuild.model.yamlfile import KeyPath, format_key, load_yaml
from epbuild.util.errors import MatrixError, Problem


class ImageSettings(Strict):
    """Where the images are published and under which name."""

    name: ImageName = Field(description="Image repository without registry, e.g. rocm/vllm-ep.")
    registry: RegistryName = Field(description="Registry (and namespace) to publish to, e.g. ghcr.io/acme.")
    extra_tags: list[Tag] = Field(default_factory=list, description="Tags added to every published cell.")
    source_component: str = Field(
        "vllm", description="The component whose repository and commit the OCI source and revision labels name.")


class BaseSettings(Strict):
    """An image every stage of a cell starts from. It must carry ROCm and PyTorch for ROCm (the offline example's
    do not carry PyTorch)."""

    image: ImageRef = Field(description="Base image reference. Unless a digest is pinned, the build resolves the "
                            "reference's digest, builds from it and records it; the content key covers it.")
    digest: Digest | None = Field(None, description="Pins the base image to this digest (sha256:...): builds use "
                                  "image@digest, and the content key is known before any build.")
    rocm_path: AbsPath = Field("/opt/rocm", description="Where ROCm lives in the base image (Debian's HIP: /usr).")
    rocm_version: Version | None = Field(
        None, description="The ROCm release the image carries (e.g. 7.2); `invoke pull --detect` matches it "
        "against the host's /opt/rocm/.info/version.")
    build_packages: list[AptPackage] = Field(
        default_factory=list, description="apt packages the `base` stage installs for every build stage."
    )
    apt_valid_until: bool = Field(
        True, description="Whether apt checks the Valid-Until date of the base's Release files when a stage installs "
        "build packages. false: a base whose suite is a frozen snapshot (the offline example's Debian sid, older "
        "than its validity window) can still install them; the packages stay checked against the signed Release.")
    rustc_version: RustChannel | None = Field(
        None, description="The Rust toolchain the image carries with its build packages (Debian's rustc: its "
        "release, e.g. 1.85), for stages that compile Rust; preflight compares it with the pin's "
        "rust-toolchain.toml and the stage checks it against the image's rustc. Unset: no Rust toolchain.")


class ArchInfo(Strict):
    gpus: list[PlainText] = Field(min_length=1, description="The GPUs of this arch, e.g. [MI300X, MI325X].")
    agent_pool: PoolName = Field(description="CI agent pool that runs the GPU tests for this arch.")
    gpu_count: int = Field(2, ge=1, le=64, description="GPUs per agent of that pool (the GPU tests use them all).")


class NicInfo(Strict):
    description: PlainText = ""
    provider: LibName = Field(description="The libibverbs provider of this NIC (mlx5, ionic, bnxt_re, ...).")
    provider_library: LibName = Field(description="The provider's library name (libmlx5, libionic, ...).")
    pci_vendors: list[HexId] = Field(
        default_factory=list, description="PCI vendor IDs (0x15b3) of its RDMA devices, for `invoke pull --detect`.")
    rdma_core: Literal["source", "distribution"] = Field(
        description="Build rdma-core from source, or use the base's distribution libibverbs.")
    flags: dict[str, FlagValue] = Field(
        default_factory=dict, description="Per component, its value for this NIC: the value its build takes "
        "(deepep: DeepEP's --nic) or what its image must carry (rocshmem: the GPU-direct-async backend, GDA_MLX5).")
    vendor: Annotated[VendorUserspace | None, BeforeValidator(none_or_vendor)] = Field(
        description="The NIC's vendor userspace (signed apt repository, key, pinned packages), or `none` for a "
        "NIC whose userspace is rdma-core's alone.",
        json_schema_extra=none_in_schema,
    )
    unsupported: dict[str, Reason] = Field(
        default_factory=dict,
        description="Components accepted in this NIC's cells although their pinned source cannot drive it (the NIC "
        "support check before a build), each with the reason.")


class Axes(Strict):
    arch: list[ArchValue] = Field(min_length=1)
    nic: list[NicName] = Field(min_length=1)
    base: list[BaseName] = Field(
        default_factory=list, description="Names from `bases`; default: every base. With several, cell names end "
        "in -<base>.")


class CellSelector(Strict):
    arch: ArchValue | None = None
    nic: NicName | None = None
    base: BaseName | None = None


DEFAULT_RUNTIME_ENV = {
    "HSA_NO_SCRATCH_RECLAIM": "1",
    "HIP_FORCE_DEV_KERNARG": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "SAFETENSORS_FAST_GPU": "1",
    "VLLM_ROCM_USE_AITER": "1",
}


class CiSettings(Strict):
    build_pool: PoolName = Field(
        "build",
        description="CI agent pool that builds: the shared-stage, cell and publish steps (a Buildkite queue; the "
        "label of GitHub self-hosted runners, since hosted runners cannot build this stack). Its agents need Docker "
        "with a builder that exports caches (ci/setup.sh) and push access to the staging registry.",
    )
    publish: bool = Field(
        True,
        description="Whether the pipelines publish each cell to image.registry on main. Publishing needs every "
        "base pinned by digest (bases.<name>.digest), so that every step works out one content key: `invoke ci` "
        "refuses an unpinned base while this is on.",
    )


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


class PythonSettings(Strict):
    """How Python requirements are resolved on the host (epbuild/inputs/wheelhouse.py): always against the base image's
    own distributions, through the host's pip configuration (its index, proxy and certificates)."""

    find_links: list[ArchiveUrl] = Field(
        default_factory=list, description="Extra places pip finds wheels in (folders relative to the matrix file, "
        "file:// or https URLs), besides the host's pip configuration: a site's own wheels, or the offline "
        "example's stand-ins.")


class ReferenceSettings(Strict):
    """The build the pins follow: vLLM's own Dockerfiles at the vLLM pin (`invoke pins` compares against them)."""

    component: str = Field("vllm", description="The component whose source holds the reference files.")
    files: list[RelPath] = Field(
        default_factory=lambda: ["docker/Dockerfile.rocm", "docker/Dockerfile.rocm_base"], min_length=1,
        description="The reference Dockerfiles, relative to that component's source.")
    differs: dict[str, Reason] = Field(
        default_factory=dict,
        description="Differences from the reference outside the pins, each with its reason: runtime_env.<VAR>, "
        "nics.<nic>.vendor (a vendor repository or package version), reference.vendor.<url> (a repository the "
        "reference installs that no NIC of the matrix uses).")


class MatrixBase(Strict):
    """matrix.yaml: the axes, the facts about each arch, NIC and base, and the pinned components."""

    registry: ClassVar[Registry]
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
    components = create_model("Components", __base__=ComponentsBase, **fields)  # type: ignore[call-overload]
    components.registry = registry
    model = create_model("Matrix", __base__=MatrixBase, components=(components, ...))  # type: ignore[call-overload]
    model.registry = registry
    return model  # type: ignore[no-any-return]


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
