"""Reads what a registry holds (digests and labels) through `docker buildx imagetools`, which uses the usual
docker credentials, without pulling an image; and what the local engine knows of an image.

A tag the registry does not have is None; a registry that refuses us or cannot be read is an error, never
"absent": `pull --build` would otherwise quietly rebuild what it merely failed to read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from epbuild.util import timeouts
from epbuild.util.commands import query
from epbuild.util.errors import EpbuildError

# What docker's resolver says when the registry refused the request or our credentials (HTTP 401/403, or the
# credentials docker could not even look up).
DENIED = ("401 unauthorized", "403 forbidden", "unauthorized", "denied", "authorization failed",
          "no basic auth credentials", "authentication required")
CREDENTIAL_HELPER = "error getting credentials"
# containerd's resolver reports a tag the registry answered 404 for as "<the ref asked for>: not found"; any other
# "not found" (a blob the manifest names, a credential helper's executable) is a broken registry or set-up.
_ABSENT = re.compile(r"(?:ERROR: )?(\S+): not found")


class RegistryError(EpbuildError):
    pass


class RegistryUnauthorised(RegistryError):
    """The registry refused us, or docker could not get credentials for it."""


class RegistryUnreadable(RegistryError):
    """The registry answered, but not with a readable image (broken manifest, missing blob, network)."""


class RegistryUnreachable(RegistryUnreadable):
    """No answer from the registry at all (refused connection, unknown host, TLS failure, time limit)."""


class RegistryAbsent(RegistryError):
    """The registry answered that it has no such manifest, where one was required."""


@dataclass(frozen=True)
class RemoteImage:
    digest: str
    labels: dict[str, str]


@dataclass(frozen=True)
class LocalImage:
    id: str
    """With the containerd image store, the digest of the image's index: the digest `docker push` writes."""
    labels: dict[str, str]


def _reason(stderr: str, returncode: int) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {returncode}"


def _inspect(ref: str, template: str) -> str | None:
    proc = query(["docker", "buildx", "imagetools", "inspect", "--format", template, ref],
                 timeout=timeouts.REGISTRY.seconds(), setting=timeouts.REGISTRY.env)
    if proc.returncode == 0:
        return proc.stdout
    reason = _reason(proc.stderr, proc.returncode)
    absent = _ABSENT.fullmatch(reason)
    if absent and familiar(absent.group(1)) == familiar(ref):
        return None
    if CREDENTIAL_HELPER in reason:
        raise RegistryUnauthorised(f"cannot read {ref}: docker could not get credentials for its registry "
                                   f"({reason}); fix the credential helper in $DOCKER_CONFIG/config.json")
    if any(marker in reason.lower() for marker in DENIED):
        raise RegistryUnauthorised(f"the registry refused access to {ref} ({reason}); log in with an account "
                                   "that may read it (docker login, or EPBUILD_REGISTRY_USER/_PASSWORD)")
    raise RegistryUnreadable(f"cannot read {ref} from its registry: {reason}")


def remote_image(ref: str) -> RemoteImage | None:
    """The manifest digest the registry holds for `ref` and its image's labels, or None if it has no such tag."""
    out = _inspect(ref, '{"digest": {{json .Manifest.Digest}}, "labels": {{json .Image.Config.Labels}}}')
    if out is None:
        return None
    data = json.loads(out)
    return RemoteImage(str(data["digest"]), dict(data["labels"] or {}))


def remote_digest(ref: str) -> str | None:
    """The manifest digest the registry holds for `ref`, or None if it has no such tag."""
    out = _inspect(ref, "{{json .Manifest}}")
    return None if out is None else str(json.loads(out)["digest"])


def remote_labels(ref: str) -> dict[str, str] | None:
    found = remote_image(ref)
    return None if found is None else found.labels


def local_image(ref: str) -> LocalImage | None:
    """What `ref` names in the local engine now; later steps use the ID, since another build may move `ref`."""
    proc = query(["docker", "image", "inspect", "--format", "{{json .Id}} {{json .Config.Labels}}", ref])
    if proc.returncode != 0:
        return None
    image_id, _, labels = proc.stdout.strip().partition(" ")
    return LocalImage(json.loads(image_id), dict(json.loads(labels) or {}))


def local_labels(ref: str) -> dict[str, str] | None:
    found = local_image(ref)
    return None if found is None else found.labels


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
