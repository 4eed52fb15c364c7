"""Reads what a registry holds (digests and labels) through the Registry HTTP API client
(epbuild/registry/client.py), with the credentials docker itself uses, without pulling an image; and what the local
engine knows of an image.

A tag the registry does not have is None; a registry that refuses us or cannot be read is an error, never
"absent": `pull --build` would otherwise quietly rebuild what it merely failed to read."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass

from epbuild.registry.client import (MANIFEST_TYPES, Manifest, Reference, Session, read_manifest, reason_of,
                                     stored_login)
from epbuild.registry.errors import RegistryAbsent, RegistryError, RegistryUnauthorised, RegistryUnreadable
from epbuild.util.commands import query

INDEX_TYPES = MANIFEST_TYPES[0], MANIFEST_TYPES[2]
# BuildKit lists its provenance/SBOM attestations in the index beside the image, as platform unknown/unknown.
ATTESTATION = "attestation-manifest"
# Python's machine names -> the OCI architecture docker pulls on this machine.
ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le",
                 "s390x": "s390x"}


@dataclass(frozen=True)
class RemoteImage:
    digest: str
    labels: dict[str, str]


@dataclass(frozen=True)
class LocalImage:
    id: str
    """With the containerd image store, the digest of the image's index: the digest `docker push` writes."""
    labels: dict[str, str]


def _session(ref: str) -> tuple[Session, Reference]:
    try:
        where = Reference.parse(ref)
    except ValueError as exc:
        raise RegistryUnreadable(str(exc)) from None
    return Session(where.host, where.repository, stored_login(where.host)), where


def _read(ref: str, *, body: bool) -> tuple[Session, Manifest] | None:
    """The manifest `ref` names, None when the registry has none; every other outcome is one line naming `ref`."""
    try:
        session, where = _session(ref)
        return session, read_manifest(session, where.reference, body=body)
    except RegistryAbsent:
        return None
    except RegistryUnauthorised as exc:
        raise RegistryUnauthorised(f"cannot read {ref}: {exc}") from None
    except RegistryUnreadable as exc:
        raise type(exc)(f"cannot read {ref} from its registry: {exc}") from None


def this_platform() -> str:
    """The platform docker pulls on this machine (the one epbuild builds for): linux/<architecture>."""
    machine = platform.machine().lower()
    return f"linux/{ARCHITECTURES.get(machine, machine)}"


def _image_of(session: Session, ref: str, index: Manifest) -> Manifest:
    """The image an index holds for this machine: its only image beside attestations (what docker and
    `imagetools inspect` show for a single-platform push), else the one for this_platform()."""
    try:
        entries = list(json.loads(index.body).get("manifests") or [])
    except (ValueError, AttributeError, TypeError):
        raise RegistryUnreadable(f"cannot read {ref} from its registry: its index {index.digest} is not JSON") from None
    images = [e for e in entries if (e.get("annotations") or {}).get("vnd.docker.reference.type") != ATTESTATION
              and (e.get("platform") or {}).get("os") != "unknown"]
    wanted = this_platform()
    if len(images) != 1:
        images = [e for e in images
                  if f"{e.get('platform', {}).get('os')}/{e.get('platform', {}).get('architecture')}" == wanted]
    if not images:
        raise RegistryUnreadable(f"cannot read {ref} from its registry: its index {index.digest} holds no image for "
                                 f"{wanted}")
    child = str(images[0]["digest"])
    try:
        return read_manifest(session, child)
    except RegistryError as exc:  # an image the index names but the registry lacks is a broken registry
        kind = RegistryUnreadable if isinstance(exc, RegistryAbsent) else type(exc)
        raise kind(f"cannot read {ref} from its registry: its image {child}: {exc}") from None


def _labels(session: Session, ref: str, manifest: Manifest) -> dict[str, str]:
    """The labels in the image config that `manifest` (an image, or an index of images) names."""
    if manifest.media_type in INDEX_TYPES:
        manifest = _image_of(session, ref, manifest)
    try:
        config = str(json.loads(manifest.body)["config"]["digest"])
    except (ValueError, KeyError, TypeError):
        raise RegistryUnreadable(f"cannot read {ref} from its registry: manifest {manifest.digest} names no image "
                                 "config") from None
    try:
        blob = session.request("GET", f"blobs/{config}")
    except RegistryError as exc:
        raise type(exc)(f"cannot read {ref}: {exc}") from None
    if blob.status != 200:
        raise RegistryUnreadable(f"cannot read {ref} from its registry: its config {config}: "
                                 f"{reason_of(blob.body, blob.status)}")
    if "sha256:" + hashlib.sha256(blob.body).hexdigest() != config:
        raise RegistryUnreadable(f"cannot read {ref} from its registry: its config {config} came with bytes of "
                                 "another digest")
    try:
        labels = (json.loads(blob.body).get("config") or {}).get("Labels") or {}
    except (ValueError, AttributeError):
        raise RegistryUnreadable(f"cannot read {ref} from its registry: its config {config} is not JSON") from None
    return {str(k): str(v) for k, v in labels.items()}


def remote_image(ref: str) -> RemoteImage | None:
    """The manifest digest the registry holds for `ref` and its image's labels, or None if it has no such tag.
    For an index, the digest is the index's (what `docker push` wrote and `docker pull ref@digest` takes)."""
    found = _read(ref, body=True)
    if found is None:
        return None
    session, manifest = found
    return RemoteImage(manifest.digest, _labels(session, ref, manifest))


def remote_digest(ref: str) -> str | None:
    """The manifest digest the registry holds for `ref`, or None if it has no such tag (a HEAD request)."""
    found = _read(ref, body=False)
    return None if found is None else found[1].digest


def has_manifest(ref: str) -> bool:
    """Whether the registry holds a manifest under `ref` (`host/repository:tag`): a HEAD request, no body read.
    A BuildKit cache export writes the manifest last, after every blob it names, so a ref that is there is whole."""
    return _read(ref, body=False) is not None


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
