"""The build matrix: its schema (pydantic models), its cross-checks, and loading it from YAML.

The models are the single source of truth for what matrix.yaml may say; `invoke schema` exports them as
JSON Schema for editors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from epbuild.errors import MatrixError, Problem
from epbuild.patterns import (
    EP_ARCHS,
    KNOWN_NICS,
    SOURCE_BUILT_PROVIDERS,
    AbsPath,
    AptPackage,
    Arch,
    ArchValue,
    Commit,
    Digest,
    EnvName,
    EnvValue,
    GitUrl,
    ImageName,
    ImageRef,
    NicName,
    PlainText,
    PoolName,
    Reason,
    Ref,
    Registry,
    RelPath,
    Tag,
    split_arch,
)
from epbuild.yamlfile import KeyPath, format_key, load_yaml


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ImageSettings(Strict):
    """Where the images are published and under which name."""

    name: ImageName = Field(description="Image repository without registry, e.g. rocm/vllm-ep.")
    registry: Registry = Field(description="Registry (and namespace) to publish to, e.g. ghcr.io/acme.")
    extra_tags: list[Tag] = Field(default_factory=list, description="Tags added to every published cell.")


class BaseSettings(Strict):
    """The image every stage starts from. It must carry ROCm and PyTorch for ROCm (the offline example's does not
    carry PyTorch)."""

    image: ImageRef = Field(description="Base image reference. Unless a digest is pinned, the build resolves the "
                            "reference's digest, builds from it and records it; the content key covers it.")
    digest: Digest | None = Field(None, description="Pins the base image to this digest (sha256:...): builds use "
                                  "image@digest, and the content key is known before any build.")
    rocm_path: AbsPath = Field("/opt/rocm", description="Where ROCm lives in the base image (Debian's HIP: /usr).")
    build_packages: list[AptPackage] = Field(
        default_factory=list, description="apt packages the `base` stage installs for every build stage."
    )


class ArchInfo(Strict):
    gpus: list[PlainText] = Field(min_length=1, description="The GPUs of this arch, e.g. [MI300X, MI325X].")
    agent_pool: PoolName = Field(description="CI agent pool that runs the GPU tests for this arch.")


class NicInfo(Strict):
    description: PlainText = ""
    provider: Literal["mlx5", "ionic", "bnxt_re"] = Field(description="The libibverbs provider of this NIC.")
    rdma_core: Literal["source", "distribution"] = Field(
        description="Build rdma-core from source (cx7, io) or use the distribution's libibverbs (thor2)."
    )
    vendor_packages: list[AptPackage] = Field(
        default_factory=list,
        description="Vendor userspace apt packages installed in the final image; the base image must have the "
        "vendor's apt repository configured.",
    )


class Axes(Strict):
    arch: list[ArchValue] = Field(min_length=1)
    nic: list[NicName] = Field(min_length=1)


class CellSelector(Strict):
    arch: ArchValue | None = None
    nic: NicName | None = None


class Requirement(Strict):
    commit: Commit = Field(description="A commit the pin must contain (be, or descend from).")
    reason: Reason = Field(description="Why: printed when a pin lacks it.")


class SourcePin(Strict):
    repo: GitUrl = Field(description="Git repository URL.")
    commit: Commit = Field(
        description="The pinned commit: 7 to 40 hex digits (all 40 let the fetch ask for exactly that commit). "
        "A tag alone is not a pin: a tag can move, and the image's content key would not."
    )
    tag: Ref | None = Field(None, description="The tag the commit carries; checked against the commit.")
    requires: list[Requirement] = Field(
        default_factory=list,
        description="Commits the pin must contain, each with its reason; checked against the pin's history when "
        "it is fetched and when it is bumped.")


class RdmaCorePin(SourcePin):
    replaces_packages: list[AptPackage] = Field(
        default_factory=lambda: ["ibverbs-providers", "ibverbs-utils", "libibverbs-dev", "libibverbs1",
                                 "librdmacm-dev", "librdmacm1", "rdmacm-utils", "rdma-core"],
        description="Distribution packages the source build replaces (purged where installed).",
    )


class RocshmemPin(SourcePin):
    path: RelPath = Field("projects/rocshmem", description="Folder of rocSHMEM inside the repository (sparse).")
    install_prefix: AbsPath = "/opt/rocshmem"


class DeepepPin(SourcePin):
    explicit_ctx: bool = Field(True, description="--rocm-explicit-ctx")
    disable_ctx: bool = Field(False, description="--rocm-disable-ctx")
    enable_mpi: bool = Field(False, description="--enable-mpi")
    aiter_moe: bool = Field(False, description="--aiter-moe")
    gfx942_fp8_fnuz_max: float | None = Field(None, gt=0, le=65504, description="--rocm-gfx942-fp8-fnuz-max N")


class MoriPin(SourcePin):
    pass


class AiterPin(SourcePin):
    prebuild_kernels: bool = Field(True, description="PREBUILD_KERNELS=1")


class VllmPin(SourcePin):
    pass


class Components(Strict):
    rdma_core: RdmaCorePin = Field(alias="rdma-core")
    rocshmem: RocshmemPin
    deepep: DeepepPin
    mori: MoriPin | None = None
    aiter: AiterPin | None = None
    vllm: VllmPin

    def pins(self) -> dict[str, SourcePin]:
        """Every configured component by its stage name, in build order."""
        out: dict[str, SourcePin] = {}
        for name in ("rdma-core", "rocshmem", "deepep", "mori", "aiter", "vllm"):
            pin = getattr(self, name.replace("-", "_"))
            if pin is not None:
                out[name] = pin
        return out


DEFAULT_RUNTIME_ENV = {
    "HSA_NO_SCRATCH_RECLAIM": "1",
    "HIP_FORCE_DEV_KERNARG": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "SAFETENSORS_FAST_GPU": "1",
    "VLLM_ROCM_USE_AITER": "1",
}


class Matrix(Strict):
    """matrix.yaml: the axes, the facts about each arch and NIC, and the pinned components."""

    image: ImageSettings
    base: BaseSettings
    axes: Axes
    exclude: list[CellSelector] = Field(default_factory=list)
    include: list[CellSelector] = Field(default_factory=list)
    archs: dict[Arch, ArchInfo]
    nics: dict[NicName, NicInfo]
    components: Components
    prepare: Literal["offline-example"] | None = Field(
        None,
        description="A built-in recipe `invoke build` runs first: `offline-example` makes the example's local "
        "base image and stand-in repositories when they are missing.",
    )
    runtime_env: dict[EnvName, EnvValue] = Field(
        default_factory=lambda: dict(DEFAULT_RUNTIME_ENV), description="Environment of the final image."
    )


class LoadedMatrix:
    """A validated matrix and the file it came from (relative repository URLs resolve against it)."""

    def __init__(self, path: Path, model: Matrix) -> None:
        self.path = path
        self.model = model

    @property
    def directory(self) -> Path:
        return self.path.parent


def load_matrix(path: Path) -> LoadedMatrix:
    """Reads and validates matrix.yaml, raising MatrixError with every problem found."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise MatrixError(path, [Problem("", "the matrix must be a mapping of keys (image, base, axes, ...)", 1)])
    try:
        model = Matrix.model_validate(doc.data)
    except ValidationError as exc:
        raise MatrixError(path, [_problem(err, doc.line_of) for err in exc.errors()]) from None
    problems = [Problem(format_key(key), msg, doc.line_of(key)) for key, msg in cross_check(model)]
    if problems:
        raise MatrixError(path, problems)
    return LoadedMatrix(path, model)


def _problem(err: Any, line_of: Any) -> Problem:
    loc: KeyPath = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = loc[:-1]
        allowed = _allowed_keys(parent)
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


def _allowed_keys(parent: KeyPath) -> list[str]:
    """The keys a mapping at `parent` may hold, found by walking the models' type annotations."""
    node: Any = Matrix
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


def cross_check(m: Matrix) -> list[tuple[KeyPath, str]]:
    """Checks that span several keys; returns (key path, message) pairs."""
    out: list[tuple[KeyPath, str]] = []
    if m.base.digest and "@" in m.base.image:
        out.append((("base", "digest"), "base.image already names a digest (@sha256:...); pin it in one place"))
    for nic in m.nics:
        if nic not in KNOWN_NICS:
            out.append((("nics", nic), f"unknown NIC {nic!r}; DeepEP's --nic accepts {', '.join(KNOWN_NICS)}"))
    for nic, info in m.nics.items():
        if info.rdma_core == "source" and info.provider not in SOURCE_BUILT_PROVIDERS:
            out.append(
                (("nics", nic, "rdma_core"),
                 f"rdma-core from source is not built for {nic} (provider {info.provider}); it is built only for "
                 f"providers {', '.join(SOURCE_BUILT_PROVIDERS)} (cx7, io). Use rdma_core: distribution.")
            )
    for axis, values in (("arch", m.axes.arch), ("nic", m.axes.nic)):
        seen: dict[frozenset[str], str] = {}
        for i, value in enumerate(values):
            same = frozenset(split_arch(value)) if axis == "arch" else frozenset([value])
            if same in seen:
                what = "" if seen[same] == value else f" (it names the same archs as {seen[same]!r})"
                out.append((("axes", axis, i), f"duplicate value {value!r} in axis {axis}{what}"))
            seen.setdefault(same, value)
    ep_users = ["deepep"] + (["mori"] if m.components.mori is not None else [])

    def check_arch_value(value: str, key: KeyPath) -> None:
        parts = split_arch(value)
        if len(set(parts)) != len(parts):
            out.append((key, f"{value!r} names an arch twice"))
        for part in parts:
            if part not in m.archs:
                out.append((key, f"unknown arch {part!r}; the archs table defines {', '.join(m.archs) or 'none'}"))
            elif part not in EP_ARCHS:
                out.append(
                    (key, f"{' and '.join(ep_users)} build only for {', '.join(EP_ARCHS)} "
                          f"(their setup.py drops any other arch); {part!r} is not allowed")
                )

    def check_nic_value(value: str, key: KeyPath) -> None:
        if value not in m.nics:
            out.append((key, f"unknown NIC {value!r}; the nics table defines {', '.join(m.nics) or 'none'}"))

    for i, value in enumerate(m.axes.arch):
        check_arch_value(value, ("axes", "arch", i))
    for i, value in enumerate(m.axes.nic):
        check_nic_value(value, ("axes", "nic", i))
    for section in ("exclude", "include"):
        for i, sel in enumerate(getattr(m, section)):
            if sel.arch is None and sel.nic is None:
                out.append(((section, i), "an entry must name an arch, a nic, or both"))
            if section == "include" and (sel.arch is None or sel.nic is None):
                out.append(((section, i), "an include entry adds one cell: it must name both arch and nic"))
            if sel.arch is not None:
                check_arch_value(sel.arch, (section, i, "arch"))
            if sel.nic is not None:
                check_nic_value(sel.nic, (section, i, "nic"))
    if not out:
        from epbuild.cells import expand  # the cell expansion is its own module; it only runs on a sane matrix

        if not expand(m):
            out.append((("exclude",), "the excludes remove every cell of the matrix; at least one must remain"))
    return out
