"""The offline base's stand-in for PyTorch for ROCm (none can be installed here): only what the stand-in builds
ask of torch. The version names the reference base's PyTorch branch (release/2.10, Dockerfile.rocm_base@00256d59)."""

from setuptools import setup

setup(
    name="torch",
    version="2.10.0+epbuild.stand.in",
    packages=["torch", "torch.utils"],
    package_data={"torch": ["share/cmake/Torch/TorchConfig.cmake"]},
    zip_safe=False,
)
