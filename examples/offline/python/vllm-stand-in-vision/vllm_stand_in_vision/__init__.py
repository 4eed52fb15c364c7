"""Stand-in for timm: imports torch at import time, as timm does."""

import torch

TORCH_VERSION = torch.__version__
