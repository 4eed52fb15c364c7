"""What makes two builds of the same inputs give the same image: SOURCE_DATE_EPOCH taken from the pins' commit
times, and BuildKit's OCI exporter with rewrite-timestamp.

BuildKit sets the image config's `created` and history times from the SOURCE_DATE_EPOCH build argument, and with
rewrite-timestamp=true clamps every file time in the new layers to it. The engine's own exporter (type=docker,
or type=image as `--load` uses) refuses rewrite-timestamp: moby always unpacks, and BuildKit 0.13 rejects
"rewrite-timestamp" together with "unpack". So each cell is exported as an OCI archive and `docker load`ed.

Each wheel stage also gets the commit time of its own pin (SOURCE_DATE_EPOCH_<COMPONENT>, set as
SOURCE_DATE_EPOCH for its bdist_wheel, which then stamps every zip entry with it): a stage shared by several
cells sees the same value in all of them, so sharing is kept, and the wheel's bytes, whose hash pip records in
direct_url.json, do not change from one build to the next.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

from epbuild.render import RenderedCell
from epbuild.stagegraph import built_pins

OVERRIDE_FILE = "bake-reproducible.json"


def epoch_arg(component: str) -> str:
    return "SOURCE_DATE_EPOCH_" + component.upper().replace("-", "_")


def oci_archive(run_dir: Path, cell: str) -> Path:
    return run_dir / f"{cell}.oci.tar"


def cell_epoch(rc: RenderedCell, epochs: Mapping[str, int]) -> int:
    """The newest commit time among the cell's pins: nothing in the image is younger than its youngest input."""
    return max(epochs[name] for name in built_pins(rc.plan))


def bake_override(cells: list[RenderedCell], epochs: Mapping[str, int], run_dir: Path) -> str:
    """A second bake file, laid over the rendered one: per cell its epochs and an OCI archive output."""
    targets = {}
    for rc in cells:
        args = {"SOURCE_DATE_EPOCH": str(cell_epoch(rc, epochs))}
        args.update({epoch_arg(name): str(epochs[name]) for name in built_pins(rc.plan)})
        targets[rc.cell.name] = {
            "args": args,
            "output": [f"type=oci,dest={oci_archive(run_dir, rc.cell.name)},rewrite-timestamp=true"],
        }
    return json.dumps({"target": targets}, indent=2) + "\n"


def archive_image_id(archive: Path) -> str:
    """The digest of the image manifest in an OCI archive: the ID the engine (containerd image store) gives the
    image once loaded. Read from the archive, it names what this build made even if the tag moves meanwhile."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive} has no index.json")
        index = json.load(member)
    return str(index["manifests"][0]["digest"])
