"""Copies a manifest from one reference to a tag inside a registry, through the Docker Registry HTTP API v2 client
(epbuild/registry/client.py): the manifest's own bytes are read from `repository@digest` (with its media type)
and written, unchanged, under the tag, so the tag names that very digest. (`docker buildx imagetools create`
would not: buildx 0.13 wraps a lone image manifest in a new index, of another digest; pushing a local image would
publish the local bytes.)

Run as `python3 -m epbuild.registry.api SOURCE@DIGEST TAG_REF` (what replay.sh records)."""

from __future__ import annotations

import sys

from epbuild.registry.client import Reference, Session, read_manifest, reason_of, stored_login
from epbuild.registry.errors import RegistryAbsent, RegistryUnreadable
from epbuild.util.errors import EpbuildError


def copy_manifest(source: str, tag: str) -> str:
    """Writes the manifest `source` (`host/repository@digest`) under `tag` (`host/repository:tag`, the same
    repository) byte for byte, and returns the digest the registry gives the tag (always `source`'s)."""
    src, dst = Reference.parse(source), Reference.parse(tag)
    if (src.host, src.repository) != (dst.host, dst.repository) or not src.reference.startswith("sha256:"):
        raise ValueError(f"copy_manifest copies repository@sha256:... to a tag of the same repository, not "
                         f"{source} -> {tag}")
    session = Session(src.host, src.repository, stored_login(src.host), push=True)
    try:
        got = read_manifest(session, src.reference)
    except (RegistryAbsent, RegistryUnreadable) as exc:
        raise type(exc)(f"{exc}; nothing was moved") from None
    put = session.request("PUT", f"manifests/{dst.reference}", got.body, {"Content-Type": got.media_type})
    if put.status not in (200, 201):
        raise RegistryUnreadable(f"the registry did not take {tag}: {reason_of(put.body, put.status)}")
    written = put.headers.get("Docker-Content-Digest") or src.reference
    if written != src.reference:
        raise RegistryUnreadable(f"the registry stored {tag} as {written}, not {src.reference}")
    return written


def replay_line(source: str, tag: str) -> str:
    """The command replay.sh records for a copy (it runs from the project root, so `epbuild` imports)."""
    from epbuild.util.commands import shell_line

    return shell_line(["python3", "-m", "epbuild.registry.api", source, tag])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m epbuild.registry.api REPOSITORY@DIGEST REPOSITORY:TAG", file=sys.stderr)
        return 2
    try:
        print(copy_manifest(argv[0], argv[1]))
    except (EpbuildError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
