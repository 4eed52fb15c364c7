"""Stand-in for ROCm/triton's python/triton_kernels/triton_kernels (the package vLLM installs as
vllm.third_party.triton_kernels); the offline example pins this archive by its sha256."""

STAND_IN = "triton_kernels stand-in, archive revision A"
