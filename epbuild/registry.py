"""Reads what a registry holds (digests and labels) through `docker buildx imagetools`, which uses the usual
docker credentials, without pulling an image. Writes go through `docker push` / `imagetools create`."""

from __future__ import annotations

import json
import subprocess

from epbuild.errors import EpbuildError

NOT_FOUND = ("not found", "manifest unknown", "name unknown", "404")


class RegistryError(EpbuildError):
    pass


def _inspect(ref: str, template: str) -> str | None:
    proc = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--format", template, ref],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return proc.stdout
    if any(marker in proc.stderr.lower() for marker in NOT_FOUND):
        return None
    raise RegistryError(f"cannot read {ref} from its registry: {proc.stderr.strip().splitlines()[-1:]}")


def remote_digest(ref: str) -> str | None:
    """The manifest digest the registry holds for `ref`, or None if it has no such tag."""
    out = _inspect(ref, "{{json .Manifest}}")
    return None if out is None else str(json.loads(out)["digest"])


def remote_labels(ref: str) -> dict[str, str] | None:
    out = _inspect(ref, "{{json .Image.Config.Labels}}")
    return None if out is None else dict(json.loads(out) or {})


def local_labels(ref: str) -> dict[str, str] | None:
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
                          capture_output=True, text=True)
    return dict(json.loads(proc.stdout) or {}) if proc.returncode == 0 else None


def local_repo_digest(ref: str, repository: str) -> str | None:
    """The digest under which the local engine knows `ref` was pushed to `repository`."""
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    for entry in json.loads(proc.stdout) or []:
        repo, _, digest = entry.partition("@")
        if repo == repository:
            return digest
    return None
