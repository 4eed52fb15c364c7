"""epbuild: builds container images of the ROCm expert-parallel inference stack from one matrix."""

__version__ = "0.1.0"
