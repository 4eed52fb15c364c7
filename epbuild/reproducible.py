"""What makes two builds of the same inputs give the same image: SOURCE_DATE_EPOCH taken from the pins' commit
times, and BuildKit's OCI exporter with rewrite-timestamp.

BuildKit sets the image config's `created` and history times from the SOURCE_DATE_EPOCH build argument, and with
rewrite-timestamp=true clamps every file time in the new layers to it. The engine's own exporter (type=docker,
or type=image as `--load` uses) refuses rewrite-timestamp: moby always unpacks, and BuildKit 0.13 rejects
"rewrite-timestamp" together with "unpack". So each cell is exported as an OCI image layout and handed to the
engine with `docker load` only when the engine does not hold that digest yet.

The layout is a DIRECTORY kept per cell under build/oci/ (tar=false), not an archive per run: BuildKit writes into
it only the blobs it lacks, so exporting an unchanged image again takes about half a second, where writing a
fresh archive of the same image took 17.6 s and made every no-op rebuild slow. Blobs the newest export no longer
references are removed after each build, so the folder holds one image per cell.

Each wheel stage also gets the commit time of its own pin (SOURCE_DATE_EPOCH_<COMPONENT>, set as
SOURCE_DATE_EPOCH for its bdist_wheel, which then stamps every zip entry with it): a stage shared by several
cells sees the same value in all of them, so sharing is kept, and the wheel's bytes, whose hash pip records in
direct_url.json, do not change from one build to the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

from epbuild.render import RenderedCell
from epbuild.stagegraph import built_pins

OVERRIDE_FILE = "bake-reproducible.json"


def epoch_arg(component: str) -> str:
    return "SOURCE_DATE_EPOCH_" + component.upper().replace("-", "_")


def oci_layout(root: Path, cell: str) -> Path:
    """The cell's OCI image layout (a directory), kept from one build to the next."""
    return root / "build" / "oci" / cell


def load_archive(run_dir: Path, cell: str) -> Path:
    """Where the layout is packed for `docker load` (which reads archives only), when the engine lacks the image."""
    return run_dir / f"{cell}.oci.tar"


def cell_epoch(rc: RenderedCell, epochs: Mapping[str, int]) -> int:
    """The newest commit time among the cell's pins: nothing in the image is younger than its youngest input."""
    return max(epochs[name] for name in built_pins(rc.plan))


def bake_override(cells: list[RenderedCell], epochs: Mapping[str, int], root: Path) -> str:
    """A second bake file, laid over the rendered one: per cell its epochs and its OCI layout as the output."""
    targets = {}
    for rc in cells:
        args = {"SOURCE_DATE_EPOCH": str(cell_epoch(rc, epochs))}
        args.update({epoch_arg(name): str(epochs[name]) for name in built_pins(rc.plan)})
        targets[rc.cell.name] = {
            "args": args,
            "output": [f"type=oci,dest={oci_layout(root, rc.cell.name)},tar=false,rewrite-timestamp=true"],
        }
    return json.dumps({"target": targets}, indent=2) + "\n"


def _index(layout: Path) -> dict[str, object]:
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{layout} is not an OCI image layout: {exc}") from None
    if not isinstance(index, dict) or not index.get("manifests"):
        raise ValueError(f"{layout}/index.json lists no image")
    return index


def layout_image_id(layout: Path) -> str:
    """The digest of the image manifest the layout's index names (BuildKit replaces the entry of the same tag on
    each export): the ID the engine (containerd image store) gives the image once loaded. Read from the layout,
    it names what this build made even if the tag moves meanwhile."""
    manifests = _index(layout)["manifests"]
    assert isinstance(manifests, list)
    return str(manifests[-1]["digest"])


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _referenced(layout: Path, descriptors: list[dict[str, object]]) -> Iterator[str]:
    """Every blob digest reachable from these descriptors: manifests, indexes, configs and layers."""
    for descriptor in descriptors:
        digest = str(descriptor["digest"])
        yield digest
        if str(descriptor.get("mediaType", "")).endswith(("manifest.v1+json", "index.v1+json",
                                                          "manifest.list.v2+json")):
            document = json.loads(_blob(layout, digest).read_text())
            children = list(document.get("manifests", []))
            children += [document["config"]] if "config" in document else []
            children += list(document.get("layers", []))
            yield from _referenced(layout, children)


def prune_layout(layout: Path) -> int:
    """Removes the blobs of earlier exports that the index no longer reaches; returns how many."""
    manifests = _index(layout)["manifests"]
    assert isinstance(manifests, list)
    keep = {_blob(layout, digest) for digest in _referenced(layout, manifests)}
    removed = 0
    for path in (layout / "blobs").glob("*/*"):
        if path.is_file() and path not in keep:
            path.unlink()
            removed += 1
    return removed
