"""The part of torch._C that MoRI's setup.py@2d02c6a9 calls when PYTORCH_ROCM_ARCH is unset."""

# The archs this "PyTorch build" carries device code for: the two the project targets.
ARCH_FLAGS = "gfx942 gfx950"


def _cuda_getArchFlags() -> str:
    return ARCH_FLAGS
