"""The image's Python environment holds together: every installed distribution's requirements are met, and the
base's PyTorch (a ROCm build no index has) is the one the image runs, never replaced by a resolver that ignored it."""

from __future__ import annotations

import json
import subprocess
from typing import Any

_TORCH = "import json, torch; print(json.dumps([torch.__version__, torch.version.hip]))"


def test_pip_check_is_clean(host: Any) -> None:
    result = host.run("python3 -m pip check")
    assert result.rc == 0, f"pip check: {result.stdout.strip()} {result.stderr.strip()}"


def test_torch_is_the_base_images_own(host: Any, expected: dict[str, Any]) -> None:
    # Read from the base image itself (by the digest the build resolved), not from anything epbuild recorded.
    base = expected["record"]["base_digest"]
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", base, "-c", _TORCH],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"cannot run the base image {base}: {done.stderr.strip()[-500:]}"
    result = host.run("python3 -c %s", _TORCH)
    assert result.rc == 0, f"torch does not import in the image: {result.stderr}"
    in_image, in_base = json.loads(result.stdout), json.loads(done.stdout)
    assert in_image == in_base, f"the image's torch {in_image} is not the base's {in_base}"
    assert in_image[1], "torch.version.hip is None: not a PyTorch built for ROCm"
