"""The pins' own GPU tests, found in each pin's source (the history the build fetched), never copied here.

Upstream layouts (ROCm/DeepEP@92b4ae18: tests/test_intranode.py and tests/test_low_latency.py are scripts that
spawn `--num-processes` ranks themselves; ROCm/mori@624002c8: tests/python/ops/test_dispatch_combine_intranode.py
is a pytest module). A pin that has no such file (an older pin, a stand-in) has nothing to run: the case reports
"not run", never "passed"."""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinTest:
    component: str
    name: str
    path: str
    """The file in the pin's tree."""
    pytest: bool
    """Run with `python3 -m pytest` (a test module) instead of as a script."""

    def argv(self, folder: str, gpus: int) -> list[str]:
        """The command in the image, with the pin's tests mounted at `folder`."""
        target = f"{folder}/{self.path}"
        if self.pytest:
            return ["python3", "-m", "pytest", "-q", "-x", target]
        return ["python3", target, "--num-processes", str(gpus)]


PIN_TESTS = [
    PinTest("deepep", "intranode", "tests/test_intranode.py", pytest=False),
    PinTest("deepep", "low-latency", "tests/test_low_latency.py", pytest=False),
    PinTest("mori", "dispatch-combine", "tests/python/ops/test_dispatch_combine_intranode.py", pytest=True),
]


def pin_has(source: dict[str, str], path: str) -> bool:
    proc = subprocess.run(["git", "--git-dir", source["git_dir"], "cat-file", "-e", f"{source['commit']}:{path}"],
                          capture_output=True)
    return proc.returncode == 0


def export_tests(source: dict[str, str], test: PinTest, dest: Path) -> Path:
    """The pin's folder holding `test` (and the helpers beside it), exported from the pin into `dest`."""
    folder = test.path.split("/")[0]
    archive = subprocess.run(["git", "--git-dir", source["git_dir"], "archive", "--format=tar", source["commit"],
                              "--", folder], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest
