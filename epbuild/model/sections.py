"""The build matrix's sections besides `components`: the image, the bases, the facts about each arch and NIC, the
axes and cell selectors, CI, Python and the reference build (pydantic models; epbuild/model/matrix.py puts them
together with the components' pins)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from epbuild.model.patterns import (
    AbsPath,
    AptPackage,
    ArchiveUrl,
    ArchValue,
    BaseName,
    Digest,
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
from epbuild.model.pins import Strict
from epbuild.model.vendor import VendorUserspace, none_in_schema, none_or_vendor


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
        default="build",
        description="CI agent pool that builds: the shared-stage, cell and publish steps (a Buildkite queue; the "
        "label of GitHub self-hosted runners, since hosted runners cannot build this stack). Its agents need Docker "
        "with a builder that exports caches (ci/setup.sh) and push access to the staging registry.",
    )
    publish: bool = Field(
        default=True,
        description="Whether the pipelines publish each cell to image.registry on main. Publishing needs every "
        "base pinned by digest (bases.<name>.digest), so that every step works out one content key: `invoke ci` "
        "refuses an unpinned base while this is on.",
    )


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
