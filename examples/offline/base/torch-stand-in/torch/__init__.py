"""Stand-in for PyTorch for ROCm in the offline base image: it answers what MoRI's build asks of torch
(ROCm/mori setup.py@2d02c6a9: torch.utils.cmake_prefix_path, torch._C._cuda_getArchFlags()) and vLLM's (torch.version.hip), and nothing else."""

from torch import _C, utils, version

__version__ = "2.10.0+epbuild.stand.in"
STAND_IN = True

__all__ = ["_C", "utils", "version", "__version__", "STAND_IN"]
