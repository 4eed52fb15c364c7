"""`vllm`: vLLM's ROCm wheel for the cell's archs; shared by every cell of one arch.

Built as docker/Dockerfile.rocm@00305ee5 builds it: build requirements in their own layer, the native extension
in a step that sees only the files it is compiled from (so a pin move that touches only Python reuses it), then
the wheel packaged around that extension (VLLM_USE_PRECOMPILED=1).
"""

from __future__ import annotations

from typing import Any

from epbuild.plan import CellPlan
from epbuild.preflight import Interface, Use
from epbuild.stages import Stage

# What the reference's csrc-build stage copies: setup.py reads these (Dockerfile.rocm@00305ee5, csrc-build).
# pyproject.toml too: the reference bind-mounts it into that step, so it is part of the step's inputs.
NATIVE_INPUTS = ("setup.py", "CMakeLists.txt", "pyproject.toml", "cmake", "csrc", "tools/build_rust.py",
                 "vllm/envs.py", "vllm/__init__.py")


def context(plan: CellPlan) -> dict[str, Any]:
    return {"gpu_targets": plan.cell.gpu_targets, "native_inputs": NATIVE_INPUTS}


def interface(plan: CellPlan) -> Interface:
    uses = [Use("env", "VLLM_TARGET_DEVICE", "the vllm stage (always rocm)"),
            Use("env", "MAX_JOBS", "`invoke build --max-jobs` (default: the builder's cores)"),
            Use("env", "VLLM_USE_PRECOMPILED", "the vllm stage (packages the native step's extension)"),
            Use("env", "PYTORCH_ROCM_ARCH", f"axes.arch ({plan.cell.arch})")]
    uses += [Use("file", name, "the vllm stage's native step") for name in NATIVE_INPUTS if "." in name]
    return Interface(uses, readers=("setup.py", "vllm/envs.py", "CMakeLists.txt", "cmake/*.cmake"))


STAGE = Stage("vllm", context, source="vllm", interface=interface, scm_distribution="vllm",
              build_requirements=("requirements/build/rocm.txt",))
