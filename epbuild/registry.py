"""Reads what a registry holds (digests and labels) through `docker buildx imagetools`, which uses the usual
docker credentials, without pulling an image; and what the local engine knows of an image."""

from __future__ import annotations

import json
import os

from epbuild.commands import Runner, query
from epbuild.errors import EpbuildError

NOT_FOUND = ("not found", "manifest unknown", "name unknown", "404")
USER_ENV, PASSWORD_ENV = "EPBUILD_REGISTRY_USER", "EPBUILD_REGISTRY_PASSWORD"


class RegistryError(EpbuildError):
    pass


def _inspect(ref: str, template: str) -> str | None:
    proc = query(["docker", "buildx", "imagetools", "inspect", "--format", template, ref])
    if proc.returncode == 0:
        return proc.stdout
    if any(marker in proc.stderr.lower() for marker in NOT_FOUND):
        return None
    reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    raise RegistryError(f"cannot read {ref} from its registry: {reason}")


def remote_digest(ref: str) -> str | None:
    """The manifest digest the registry holds for `ref`, or None if it has no such tag."""
    out = _inspect(ref, "{{json .Manifest}}")
    return None if out is None else str(json.loads(out)["digest"])


def remote_labels(ref: str) -> dict[str, str] | None:
    out = _inspect(ref, "{{json .Image.Config.Labels}}")
    return None if out is None else dict(json.loads(out) or {})


def local_labels(ref: str) -> dict[str, str] | None:
    proc = query(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref])
    return dict(json.loads(proc.stdout) or {}) if proc.returncode == 0 else None


def familiar(repository: str) -> str:
    """Docker's short form of a repository: docker.io/library/x -> x, docker.io/x/y -> x/y (RepoDigests use it)."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if repository.startswith(prefix) and (prefix.endswith("library/") or "/" in repository[len(prefix):]):
            return repository[len(prefix):]
    return repository


def local_repo_digest(ref: str, repository: str) -> str | None:
    """The digest under which the local engine knows `ref` was pushed to `repository`."""
    proc = query(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref])
    if proc.returncode != 0:
        return None
    for entry in json.loads(proc.stdout) or []:
        repo, _, digest = entry.partition("@")
        if familiar(repo) == familiar(repository):
            return digest
    return None


def login(registry_host: str, runner: Runner) -> None:
    """`docker login` from EPBUILD_REGISTRY_USER/_PASSWORD when both are set (else docker's own login is used);
    the password goes to docker on standard input only, never to a log, an image or a command line."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        runner.run(["docker", "login", registry_host, "--username", user, "--password-stdin"], stdin=password,
                   capture=True)
