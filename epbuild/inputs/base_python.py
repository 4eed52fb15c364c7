"""What the base image's Python is and what it already carries, read from the image itself (no network inside).

Every wheelhouse is resolved against it: the reference base's PyTorch is a `+rocm` build that no index has, so a
resolver that ignores what the base carries replaces it with PyPI's CUDA build (vLLM's requirements pull torch
through timm, xgrammar and compressed-tensors; the reference resolves inside the image for exactly that reason,
`uv pip install --system -r requirements/rocm.txt`, docker/Dockerfile.rocm@00305ee5).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass

from epbuild.util.errors import EpbuildError


class BasePythonError(EpbuildError):
    pass


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PythonTarget:
    """The interpreter the wheels are for."""

    version: str  # "3.13"
    glibc: tuple[int, int]
    machine: str

    def pip_args(self) -> list[str]:
        nodot = self.version.replace(".", "")
        platforms = [f"manylinux_2_{minor}_{self.machine}" for minor in range(self.glibc[1], 16, -1)]
        platforms += [f"manylinux2014_{self.machine}", f"linux_{self.machine}"]
        args = ["--only-binary=:all:", "--python-version", self.version, "--implementation", "cp",
                "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]
        for platform in platforms:
            args += ["--platform", platform]
        return args


@dataclass(frozen=True)
class Distribution:
    """One installed distribution of the base: its name, version and own METADATA (whose Requires-Dist lines the
    resolver follows, so what the base's packages need is never pulled over them either)."""

    name: str
    version: str
    metadata: str

    @property
    def key(self) -> str:
        return canonical(self.name)


@dataclass(frozen=True)
class BasePython:
    image: str
    target: PythonTarget
    distributions: tuple[Distribution, ...]

    def provided(self) -> dict[str, Distribution]:
        return {d.key: d for d in self.distributions}

    def fingerprint(self) -> list[object]:
        """What a resolution against this base depends on (a wheelhouse stamp holds it)."""
        return [self.target.__dict__, sorted((d.key, d.version, d.metadata) for d in self.distributions)]


# Runs inside the base image: the interpreter, glibc and machine, then every distribution on sys.path in the order
# Python finds them (the first of two copies of one name is the one that imports, and the one pip sees).
_PROBE = r"""
import importlib.metadata as md, json, os, platform, sys
glibc = os.confstr('CS_GNU_LIBC_VERSION').split()[1].split('.')
seen, dists = set(), []
for d in md.distributions():
    name = d.metadata['Name']
    if not name or name.lower() in seen:
        continue
    seen.add(name.lower())
    dists.append({'name': name, 'version': d.version, 'metadata': d.read_text('METADATA') or d.read_text('PKG-INFO') or ''})
print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'glibc': glibc[:2], 'machine': platform.machine(),
                  'distributions': dists}))
"""


def read(image: str) -> BasePython:
    """Asks `image` for its Python and its installed distributions."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", _PROBE],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise BasePythonError(f"cannot ask {image} for its Python and its distributions: {reason}")
    data = json.loads(proc.stdout)
    target = PythonTarget(data["python"], (int(data["glibc"][0]), int(data["glibc"][1])), data["machine"])
    dists = tuple(Distribution(d["name"], d["version"], d["metadata"]) for d in data["distributions"])
    return BasePython(image, target, dists)
