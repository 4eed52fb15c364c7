"""Helpers for the tests that drive the real CLI against the real Docker engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = "examples/offline/matrix.yaml"


def offline_example_copy(dest: Path, text: str | None = None) -> Path:
    """A copy of the offline example's matrix under `dest`, laid out as in the repository so that every path it
    names relative to itself (`../../build/offline/...`: the stand-in repositories and the stand-in wheels its
    `python.find_links` names) reaches this checkout's, which the prepare step makes. Returns the matrix."""
    matrix = dest / "examples" / "offline" / "matrix.yaml"
    matrix.parent.mkdir(parents=True)
    matrix.write_text((ROOT / OFFLINE).read_text() if text is None else text)
    offline = dest / "build" / "offline"
    offline.mkdir(parents=True)
    for name in ("repos", "wheels"):
        (offline / name).symlink_to(ROOT / "build" / "offline" / name, target_is_directory=True)
    return matrix


@dataclass
class InvokeResult:
    code: int
    out: str
    err: str

    @property
    def run_dir(self) -> Path:
        m = re.search(r"logs and replayable commands: (\S+)", self.out)
        assert m, f"no run folder in the output:\n{self.out[-2000:]}\n{self.err[-2000:]}"
        return Path(m.group(1))

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "summary.json").read_text())


def invoke(*args: str, check: bool = False, timeout: int = 3600, env: dict[str, str] | None = None) -> InvokeResult:
    import os

    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    result = InvokeResult(proc.returncode, proc.stdout, proc.stderr)
    if check:
        assert proc.returncode == 0, f"invoke {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return result


def invoke_in(clone: Path, *args: str, timeout: int = 3600) -> InvokeResult:
    """Another checkout's own `invoke` (its tasks.py and epbuild package), run from that checkout."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=clone, capture_output=True, text=True,
                          timeout=timeout, env=env)
    return InvokeResult(proc.returncode, proc.stdout, proc.stderr)


def cells_json(matrix: str = OFFLINE) -> dict[str, dict[str, Any]]:
    data = json.loads(invoke("matrix", "--matrix", matrix, "--json", check=True).out)
    return {c["cell"]: c for c in data["cells"]}


def own_image(cell: dict[str, Any]) -> str:
    """The image this checkout built for a cell (`cell` as `invoke matrix --json` lists it). Its local tag is shared
    by every checkout on the engine, and other builds move it; the checkout's own tag is this checkout's alone."""
    from epbuild.build.bake_command import checkout_tag

    return checkout_tag(cell["image"], ROOT)


def docker_run(image: str, *command: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", command[0], image,
                           *command[1:]], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
