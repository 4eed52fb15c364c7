"""torch.utils.cmake_prefix_path: where find_package(Torch) finds TorchConfig.cmake, as in PyTorch."""

import os

cmake_prefix_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "share", "cmake")
