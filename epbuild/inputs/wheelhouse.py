"""Python requirements, hermetic: resolved on the host against what the base image already carries, downloaded
(cached, pinned by hash, reusable offline), handed to a stage as a named context and installed there with
`pip install --no-index --require-hashes`, in a layer of its own.

Why on the host: inside a build container pip cannot even verify PyPI's certificate on these machines, and on a
user's machine a network install makes the build unrepeatable. Why against the base: the base's PyTorch for ROCm
is a build no index has; resolved as if nothing were installed, vLLM's requirements pull PyPI's CUDA torch over it
(epbuild/inputs/base_python.py). So the resolver sees the base's distributions as installed, never downloads, installs
over or replaces one of them, and a requirement only a replacement would satisfy fails here, naming its chain.

Build requirements: MoRI's requirements-build.txt (ROCm/mori@2d02c6a9), AITER's requirements.txt (ROCm/aiter@6a0e7b26),
vLLM's requirements/build/rocm.txt, plus each one's `[build-system] requires` and `setup_requires`
(epbuild/inputs/build_requires.py). Runtime requirements: what vLLM's setup.py installs with it (requirements/rocm.txt).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Spec
from packaging.version import InvalidVersion, Version

from epbuild.inputs.base_python import BasePython, PythonTarget, canonical
from epbuild.inputs.requirement_files import Requirement, WheelhouseError, requirement_files, requirements
from epbuild.util import atomicfs
from epbuild.util.commands import CommandFailed, Runner

__all__ = ["BasePython", "IndexUnreachable", "PythonTarget", "Requirement", "WheelhouseError", "canonical", "ensure",
           "requirement_files", "requirements"]

log = logging.getLogger(__name__)

LOCK_FILE = "requirements.lock"
STAMP_SUFFIX = ".stamp.json"


def stamp_path(dest: Path) -> Path:
    """Where the wheelhouse `dest` records what it was resolved from: beside the folder, not in it. The folder is a
    stage's named context, and BuildKit keys the stage by all its content: a stamp inside, whose inputs digest
    holds the spelling of python.find_links (an absolute path, a file:// URI, another checkout's path), gave the
    same wheels a new context and re-ran the requirements stage and every stage after it (bench.fleet's vLLM
    move at 2825cdd re-ran AITER, MoRI and NIXL). `invoke gc` removes it with its folder (same stem)."""
    return dest.parent / f"{dest.name}{STAMP_SUFFIX}"


class IndexUnreachable(WheelhouseError):
    """pip could not reach its package index: the requirements were never checked."""


UNREACHABLE = re.compile(r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
                         r"resolution|Network is unreachable|ProxyError|ConnectTimeoutError")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs_digest(lines: Sequence[Requirement], base: BasePython, find_links: Sequence[str]) -> str:
    data = [[r.line for r in lines], base.fingerprint(), list(find_links)]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


UNRESOLVED = "not resolved for these inputs"


def _unusable(dest: Path, digest: str) -> str | None:
    """Why the wheelhouse at `dest` cannot be reused as it is (UNRESOLVED: no stamp, or one for other inputs; else
    a wheel or lock that no longer has the hashes recorded when it was downloaded: an edited or truncated file),
    or None. Every wheel is hashed on each reuse: they are small."""
    try:
        stamp = json.loads(stamp_path(dest).read_text())
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


def _pip_reason(exc: CommandFailed) -> str:
    lines = [line.strip() for line in exc.output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or [f"exit {exc.returncode}"])[-1]


def _failure(exc: CommandFailed, message: str) -> WheelhouseError:
    """pip's failure as one line; IndexUnreachable where it never reached its index: pip ends with "No matching
    distribution" both for a requirement the index lacks and for an index it never reached, and only its retry
    warnings tell the two apart."""
    unreachable = next((line for line in exc.output.splitlines() if UNREACHABLE.search(line)), None)
    text = f"{message}: {_pip_reason(exc)}" + (f" ({unreachable.strip()[:200]})" if unreachable else "")
    return (IndexUnreachable if unreachable else WheelhouseError)(text)


def _environment(base: BasePython, folder: Path) -> Path:
    """A Python environment on the host holding only the base's distributions, as metadata: the interpreter pip
    resolves for (`pip --python`) sees exactly what the base image has installed, and nothing of the host's."""
    env = folder / "base-env"
    Runner().run([sys.executable, "-m", "venv", "--without-pip", str(env)], capture=True, record=False)
    [site] = list((env / "lib").glob("python*/site-packages"))
    for dist in base.distributions:
        info = site / f"{re.sub(r'[-_.]+', '_', dist.name)}-{dist.version}.dist-info"
        info.mkdir(exist_ok=True)
        metadata = dist.metadata or f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n"
        (info / "METADATA").write_text(metadata)
        (info / "INSTALLER").write_text("base image\n")
    return env / "bin" / "python"


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _marker_environment(target: PythonTarget) -> dict[str, str]:
    env = {key: str(value) for key, value in default_environment().items()}
    env.update(python_version=target.version, python_full_version=f"{target.version}.0", extra="")
    return env


def _chain(wanted: str, have: str, lines: Sequence[Requirement], report: list[dict], target: PythonTarget) -> str:
    """The path from a requirement line to `wanted` through what the resolution would install, preferring one whose
    last requirement the base's version `have` does not meet (that one forces the replacement):
    `requirements/common.txt: timm -> torch (timm 1.0 requires torch>=2.11)`."""
    env = _marker_environment(target)
    needs: dict[str, list[tuple[str, str]]] = {}
    versions: dict[str, str] = {}
    for item in report:
        name = canonical(item["metadata"]["name"])
        versions[name] = item["metadata"]["version"]
        for text in item["metadata"].get("requires_dist", []):
            try:
                spec = Spec(text)
            except InvalidRequirement:
                continue
            if spec.marker is None or spec.marker.evaluate(env):
                needs.setdefault(name, []).append((canonical(spec.name), str(spec)))
    found: list[tuple[Requirement, list[tuple[str, str]]]] = []
    for line in lines:
        # Every node reachable from the line, by its shortest path; each edge from one of them into `wanted` is a
        # chain (the one whose requirement the base does not meet is picked below).
        paths = {line.name: [(line.name, line.line)]}
        queue: deque[str] = deque([line.name])
        while queue:
            node = queue.popleft()
            if node == wanted:
                found.append((line, paths[node]))
                continue
            for child, text in needs.get(node, []):
                if child == wanted:
                    found.append((line, [*paths[node], (child, text)]))
                elif child not in paths:
                    paths[child] = [*paths[node], (child, text)]
                    queue.append(child)

    def excludes_base(path: list[tuple[str, str]]) -> bool:
        try:
            return not Spec(path[-1][1]).specifier.contains(have, prereleases=True)
        except InvalidRequirement:
            return False

    if not found:
        return f"{wanted} (asked for by the resolution)"
    line, path = sorted(found, key=lambda f: (not excludes_base(f[1]), len(f[1])))[0]
    names = " -> ".join(node for node, _ in path)
    why = f"{path[-2][0]} {versions.get(path[-2][0], '')} requires {path[-1][1]}" if len(path) > 1 \
        else f"asks for {line.line}"
    return f"{line.origin}: {names} ({why})"


def resolve(lines: Sequence[Requirement], base: BasePython, find_links: Sequence[str], runner: Runner,
            where: str, folder: Path) -> list[tuple[str, str]]:
    """(name, version) of every distribution these requirements need beyond what the base carries, resolved with
    the host's pip as if installing into the base; raises WheelhouseError when that would replace a distribution
    of the base (naming the chain and the base's version) or when no resolution exists (with pip's reason)."""
    python = _environment(base, folder)
    (folder / "requirements.in").write_text("".join(r.line + "\n" for r in lines))
    # The base's distributions as constraints at their own versions: pip then looks for releases that work with
    # them (an older setuptools-scm where the newest needs a newer packaging than the base's) instead of
    # upgrading them. Only where no such resolution exists is it asked again without them, to name the chain.
    (folder / "base-constraints.txt").write_text("".join(f"{d.name}=={d.version}\n" for d in base.distributions
                                                         if _is_version(d.version)))
    report = folder / "report.json"

    def dry_run(*extra: str) -> list[str]:
        return [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--quiet",
                "--disable-pip-version-check", "--report", str(report), *base.target.pip_args(),
                *[arg for link in find_links for arg in ("--find-links", link)], *extra,
                "--requirement", str(folder / "requirements.in")]

    try:
        runner.run(dry_run("--constraint", str(folder / "base-constraints.txt")), capture=True)
        return [(item["metadata"]["name"], item["metadata"]["version"])
                for item in json.loads(report.read_text())["install"]]
    except CommandFailed as exc:
        constrained = exc
    try:
        runner.run(dry_run(), capture=True)
    except CommandFailed as exc:
        raise _failure(exc, f"{where}: cannot resolve its requirements against {base.image} (Python "
                            f"{base.target.version})") from None
    install = json.loads(report.read_text())["install"]
    provided = base.provided()
    replaced = [item for item in install if canonical(item["metadata"]["name"]) in provided]
    if not replaced:
        raise _failure(constrained, f"{where}: cannot resolve its requirements against {base.image} (Python "
                                    f"{base.target.version})")
    if replaced:
        problems = []
        for item in replaced:
            dist = provided[canonical(item["metadata"]["name"])]
            problems.append(f"{_chain(dist.key, dist.version, lines, install, base.target)}: would replace the base's "
                            f"{dist.name} {dist.version} with {item['metadata']['version']}")
        raise WheelhouseError(f"{where}: its requirements can only be met by replacing what the base image "
                              f"{base.image} carries, which epbuild never does; nothing was built:\n  "
                              + "\n  ".join(problems))
    return [(item["metadata"]["name"], item["metadata"]["version"]) for item in install]


def ensure(root: Path, dest_name: str, where: str, lines: Sequence[Requirement], base: BasePython,
           runner: Runner, *, find_links: Sequence[str] = ()) -> Path:
    """The wheelhouse `root/dest_name` for these requirement lines: reused when its stamp and every wheel's hash
    still match (no network), else resolved against the base, downloaded into a temporary folder and swapped in."""
    dest = root / dest_name
    digest = _inputs_digest(lines, base, find_links)
    unusable = _unusable(dest, digest)
    if unusable is None:
        return dest
    if unusable != UNRESOLVED:
        log.warning("%s: %s; downloading the wheelhouse again", where, unusable)
    with tempfile.TemporaryDirectory(prefix="epbuild-resolve-") as scratch:
        pins = resolve(lines, base, find_links, runner, where, Path(scratch)) if lines else []
    # The old stamp goes first: a run killed before the new one is written resolves again.
    stamp_path(dest).unlink(missing_ok=True)
    # filled_dir swaps the new folder in whole: dest is the old wheelhouse or the new one, never a partial one.
    with atomicfs.filled_dir(dest, f".{dest.name}.") as tmp:
        (tmp / "requirements.in").write_text("".join(r.line + "\n" for r in lines))
        (tmp / "resolved.txt").write_text("".join(f"{name}=={version}\n" for name, version in pins))
        if pins:
            argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                    *base.target.pip_args(), *[arg for link in find_links for arg in ("--find-links", link)],
                    "--dest", str(tmp), "--requirement", str(tmp / "resolved.txt")]
            try:
                runner.run(argv, capture=True)
            except CommandFailed as exc:
                raise _failure(exc, f"{where}: cannot download its requirements for Python "
                                    f"{base.target.version}") from None
        wheels = {p.name: _sha256(p) for p in sorted(tmp.glob("*.whl"))}
        (tmp / LOCK_FILE).write_text("".join(_lock_line(tmp / n, s) + "\n" for n, s in wheels.items()))
        for path in tmp.iterdir():
            os.chmod(path, 0o644)
    atomicfs.write_text(stamp_path(dest), json.dumps({"inputs": digest, "wheels": wheels}, indent=2) + "\n")
    return dest
