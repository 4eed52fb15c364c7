"""Build requirements, hermetic: resolved and downloaded on the host like sources (cached, pinned by hash,
reusable offline), handed to the stage as the named context `wheels-<component>` and installed there with
`pip install --no-index --require-hashes`, in a layer of its own.

Why: inside a build container pip cannot even verify PyPI's certificate on these machines, and on a user's machine
a network install makes the build unrepeatable. MoRI lists its build requirements in requirements-build.txt
(ROCm/mori@2d02c6a9), AITER in requirements.txt (ROCm/aiter@6a0e7b26), vLLM in requirements/build/rocm.txt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from epbuild import atomicfs
from epbuild.bakefile import wheelhouse_dir
from epbuild.commands import CommandFailed, Runner
from epbuild.errors import EpbuildError

log = logging.getLogger(__name__)

LOCK_FILE = "requirements.lock"
STAMP_FILE = ".epbuild-wheelhouse.json"
# The base image must carry PyTorch for ROCm and what comes with it (docs: base.image); PyPI's torch is the CUDA
# build, so these are never taken from a requirements file (mori's and vLLM's list torch with ROCm's index).
BASE_PROVIDED = frozenset({"torch", "torchvision", "torchaudio", "triton", "pytorch-triton-rocm", "amdsmi"})
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


class WheelhouseError(EpbuildError):
    pass


class IndexUnreachable(WheelhouseError):
    """pip could not reach its package index: the requirements were never checked."""


UNREACHABLE = re.compile(r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
                         r"resolution|Network is unreachable|ProxyError|ConnectTimeoutError")


@dataclass(frozen=True)
class PythonTarget:
    """The interpreter the wheels are for: the base image's, read from the image itself."""

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


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(source: Path, files: tuple[str, ...], where: str) -> list[str]:
    """The requirement lines of `files` (following `-r`), without pip options and without what the base carries."""
    out: list[str] = []

    def read(path: Path, chain: tuple[Path, ...]) -> None:
        if not path.is_file():
            raise WheelhouseError(f"{where}: requirements file {path.relative_to(source)} does not exist at the pin")
        for raw in path.read_text().splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("-r ", "--requirement ")):
                target = (path.parent / line.split(None, 1)[1]).resolve()
                if target not in chain:
                    read(target, (*chain, target))
                continue
            if line.startswith("-"):
                continue  # index options: the host's pip configuration decides where wheels come from
            match = NAME.match(line)
            if match and canonical(match.group(1)) in BASE_PROVIDED:
                continue
            if line not in out:
                out.append(line)

    for name in files:
        read(source / name, (source / name,))
    return out


def image_python(image: str) -> PythonTarget:
    """Asks the base image which Python, glibc and machine it has (no network inside)."""
    code = ("import os, platform, sys; v = os.confstr('CS_GNU_LIBC_VERSION').split()[1].split('.'); "
            "print(f'{sys.version_info[0]}.{sys.version_info[1]} {v[0]} {v[1]} {platform.machine()}')")
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", code],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise WheelhouseError(f"cannot ask {image} for its Python: {proc.stderr.strip().splitlines()[-1:]}")
    version, major, minor, machine = proc.stdout.split()
    return PythonTarget(version, (int(major), int(minor)), machine)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs_digest(lines: list[str], target: PythonTarget) -> str:
    return hashlib.sha256(json.dumps([lines, target.__dict__], sort_keys=True).encode()).hexdigest()


UNRESOLVED = "not resolved for these inputs"


def _unusable(dest: Path, digest: str) -> str | None:
    """Why the wheelhouse at `dest` cannot be reused as it is (UNRESOLVED: no stamp, or one for other inputs; else
    a wheel or lock that no longer has the hashes recorded when it was downloaded: an edited or truncated file),
    or None. Every wheel is hashed on each reuse: they are small."""
    try:
        stamp = json.loads((dest / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return UNRESOLVED
    if stamp.get("inputs") != digest:
        return UNRESOLVED
    for name, sha in stamp["wheels"].items():
        if not (dest / name).is_file() or _sha256(dest / name) != sha:
            return f"the cached wheel {name} does not match its recorded sha256"
    lock = "".join(_lock_line(dest / n, s) + "\n" for n, s in stamp["wheels"].items())
    if not (dest / LOCK_FILE).is_file() or (dest / LOCK_FILE).read_text() != lock:
        return f"the cached {LOCK_FILE} does not list the recorded wheels' hashes"
    return None


def _lock_line(wheel: Path, sha: str) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{canonical(name)}=={version} --hash=sha256:{sha}"


def ensure(root: Path, component: str, commit: str, base: str, lines: list[str], target: PythonTarget,
           runner: Runner) -> Path:
    """The wheelhouse for these requirement lines: reused when its stamp and every wheel's hash still match
    (no network), else resolved with the host's pip into a temporary folder and renamed into place."""
    dest = root / wheelhouse_dir(component, commit, base)
    digest = _inputs_digest(lines, target)
    unusable = _unusable(dest, digest)
    if unusable is None:
        return dest
    if unusable != UNRESOLVED:
        log.warning("%s at %s: %s; downloading the wheelhouse again", component, commit[:12], unusable)
    # filled_dir swaps the new folder in whole: dest is the old wheelhouse or the new one, never a partial one.
    with atomicfs.filled_dir(dest, f".{dest.name}.") as tmp:
        (tmp / "requirements.in").write_text("".join(line + "\n" for line in lines))
        if lines:
            argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    *target.pip_args(), "--dest", str(tmp), "--requirement", str(tmp / "requirements.in")]
            try:
                runner.run(argv, capture=True)
            except CommandFailed as exc:
                reason = exc.output.strip().splitlines()[-1] if exc.output.strip() else f"exit {exc.returncode}"
                # pip ends with "No matching distribution" both for a requirement the index lacks and for an
                # index it never reached; only its retry warnings tell the two apart.
                unreachable = next((line for line in exc.output.splitlines() if UNREACHABLE.search(line)), None)
                raise (IndexUnreachable if unreachable else WheelhouseError)(
                    f"{component} at {commit[:12]}: cannot download its build requirements for Python "
                    f"{target.version}: {reason}" + (f" ({unreachable.strip()[:200]})" if unreachable else "")
                ) from None
        wheels = {p.name: _sha256(p) for p in sorted(tmp.glob("*.whl"))}
        (tmp / LOCK_FILE).write_text("".join(_lock_line(tmp / n, s) + "\n" for n, s in wheels.items()))
        (tmp / STAMP_FILE).write_text(json.dumps({"inputs": digest, "wheels": wheels}, indent=2) + "\n")
        for path in tmp.iterdir():
            os.chmod(path, 0o644)
    return dest
