"""What a matrix names only loosely, made exact: the base image's digest (a tag such as rocm/vllm-dev:base moves)
and each pin's full commit (the matrix may abbreviate). The content key is computed from these.

Nothing here fetches: a digest comes from the matrix's pin, the local engine or the registry; a full commit
from the matrix, or from the sources cache's mirror that `invoke sources`/`build` fetched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from epbuild.model.matrix import BaseSettings, LoadedMatrix
from epbuild.registry import reads as registry
from epbuild.util.commands import query
from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)

FULL_COMMIT = 40


class ResolveError(EpbuildError):
    pass


@dataclass(frozen=True)
class Resolved:
    """The exact inputs of a build: each base image's digest and every component's full commit. A component built
    from a local tree (`--source`) is listed in `dirty` with the digest of that tree's content."""

    base_digests: Mapping[str, str]
    """base name (matrix `bases`) -> the digest of its image."""
    commits: Mapping[str, str]
    dirty: Mapping[str, str] = field(default_factory=dict)
    """component -> the content digest of the local tree it was built from (`--source`)."""
    local_paths: Mapping[str, str] = field(default_factory=dict)
    """component -> that local tree's path, for the record (the key leaves it out)."""


def pinned_digest(base: BaseSettings) -> str | None:
    """The digest the matrix pins: `base.digest`, or an `@sha256:` in `base.image`."""
    if base.digest:
        return base.digest
    _, at, digest = base.image.partition("@")
    return digest if at else None


def base_digest(base: BaseSettings, *, remote: bool = True) -> str:
    """The matrix's pin; else the local engine's image for the reference; else (with `remote`) the registry's."""
    pinned = pinned_digest(base)
    if pinned:
        return pinned
    local = local_digest(base.image)
    if local:
        return local
    if remote:
        found = registry.remote_digest(base.image)
        if found:
            return found
    raise ResolveError(f"base.image {base.image}: neither the local engine{' nor its registry' if remote else ''} "
                       "has it, so its digest is unknown; pull or build it, or pin base.digest in the matrix")


def local_digest(image: str) -> str | None:
    """The digest the local engine knows `image` by (with the containerd image store, also for an image that was
    never pushed), or None when the engine lacks it or cannot be reached."""
    try:
        proc = query(["docker", "image", "inspect", "--format", "{{json .RepoDigests}} {{.Id}}", image])
    except FileNotFoundError:  # no docker on this machine
        return None
    if proc.returncode != 0:
        return None
    digests_json, _, image_id = proc.stdout.strip().rpartition(" ")
    for entry in json.loads(digests_json or "[]") or []:
        repo, _, digest = entry.partition("@")
        if registry.familiar(repo) == registry.familiar(repository(image)):
            return digest
    return image_id or None


def repository(image: str) -> str:
    """The reference without its tag and digest: ghcr.io:443/a/b:t@sha256:x -> ghcr.io:443/a/b."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def full_commits(matrix: LoadedMatrix, components: list[str], root: Path,
                 mirrors: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each component's full commit: the matrix's when it has all 40 digits, else the fetched mirror's."""
    from epbuild.inputs import sources
    from epbuild.inputs.source_requests import requests_for

    pins = matrix.model.components.pins()
    out: dict[str, str] = {}
    for name in components:
        pin = pins[name]
        if len(pin.commit) == FULL_COMMIT:
            out[name] = pin.commit
            continue
        request = requests_for(matrix, [name], mirrors or {})[0]
        full = sources.resolve_cached(root, request)
        if full is None:
            raise ResolveError(f"{name}: the matrix abbreviates its commit ({pin.commit}) and the sources cache has "
                               f"not fetched it yet; run `invoke sources` first, or write all 40 digits "
                               f"(`invoke bump {name} {pin.commit}` does)")
        out[name] = full
    return out
