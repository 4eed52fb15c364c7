"""Pushes the image of an OCI image layout (the one a build exported, epbuild/build/reproducible.py) to a registry tag
through the Docker Registry HTTP API v2, bytes unchanged: the tag names the layout's own manifest digest, the very
ID a local build of the same inputs gives the image.

Why not push from the builder (`--output type=registry,rewrite-timestamp=true`): the engine's image exporter
always unpacks, and BuildKit 0.13 refuses "rewrite-timestamp" together with "unpack"; without rewrite-timestamp
the pushed layers carry the build's file times and no two builds give the same digest. The layout is written on
this machine (even from a remote builder), so its blobs go from here straight to the registry; the local engine
is not involved.

Run as `python3 -m epbuild.registry.push LAYOUT REPOSITORY:TAG` (what replay.sh records)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from epbuild.registry.client import Reference, Session, base_url, reason_of, stored_login
from epbuild.registry.errors import RegistryUnreadable
from epbuild.util.errors import EpbuildError


def _descriptor(layout: Path) -> dict[str, object]:
    """The image the layout's index names last (BuildKit replaces its entry on each export)."""
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    return dict(manifests[-1])


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _upload(session: Session, layout: Path, digest: str) -> None:
    """One blob, unless the repository holds it already (a push of an unchanged layer sends nothing)."""
    if session.request("HEAD", f"blobs/{digest}").status == 200:
        return
    started = session.request("POST", "blobs/uploads/", b"")
    location = started.headers.get("Location", "")
    if started.status != 202 or not location:
        raise RegistryUnreadable(f"the registry {session.host} did not start an upload of {digest}: "
                                 f"{reason_of(started.body, started.status)}")
    if location.startswith("/"):
        location = base_url(session.host) + location
    path = _blob(layout, digest)
    separator = "&" if "?" in location else "?"
    with path.open("rb") as data:
        # A file object with its length: urllib streams it rather than hold a layer in memory.
        done = session.request_url("PUT", f"{location}{separator}digest={digest}", data,
                                   {"Content-Type": "application/octet-stream",
                                    "Content-Length": str(path.stat().st_size)})
    if done.status != 201:
        raise RegistryUnreadable(f"the registry {session.host} did not take the blob {digest}: "
                                 f"{reason_of(done.body, done.status)}")


def push_layout(layout: Path, tag: str) -> str:
    """Uploads the layout's image (its config and layers, then its manifest) under `tag`; returns the digest the
    registry gives the tag, which is the layout's own."""
    ref = Reference.parse(tag)
    descriptor = _descriptor(layout)
    digest, media_type = str(descriptor["digest"]), str(descriptor["mediaType"])
    manifest = _blob(layout, digest).read_bytes()
    document = json.loads(manifest)
    children = document.get("manifests", [])
    if children:
        raise EpbuildError(f"{layout} names an index, not one image; push_layout pushes a single image")
    session = Session(ref.host, ref.repository, stored_login(ref.host), push=True)
    for blob in [document["config"], *document["layers"]]:
        _upload(session, layout, str(blob["digest"]))
    put = session.request("PUT", f"manifests/{ref.reference}", manifest, {"Content-Type": media_type})
    if put.status not in (200, 201):
        raise RegistryUnreadable(f"the registry did not take {tag}: {reason_of(put.body, put.status)}")
    written = put.headers.get("Docker-Content-Digest") or digest
    if written != digest:
        raise RegistryUnreadable(f"the registry stored {tag} as {written}, not the layout's {digest}")
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m epbuild.registry.push LAYOUT REPOSITORY:TAG", file=sys.stderr)
        return 2
    try:
        print(push_layout(Path(argv[0]), argv[1]))
    except (EpbuildError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
