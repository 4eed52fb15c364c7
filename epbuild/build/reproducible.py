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
references are removed after each build, so the folder holds one image per cell. A build holds its cells'
layouts (a lock file beside each) from the export until the engine has the image. Then every blob of the layout
becomes a hard link into one content store (epbuild/build/blobstore.py), so a blob several cells share (the base image's
layers) is on disk once, and the store's blobs no layout links any more are removed.

Each wheel stage also gets the commit time of its own pin (SOURCE_DATE_EPOCH_<COMPONENT>, set as
SOURCE_DATE_EPOCH for its bdist_wheel, which then stamps every zip entry with it): a stage shared by several
cells sees the same value in all of them, so sharing is kept, and the wheel's bytes, whose hash pip records in
direct_url.json, do not change from one build to the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from epbuild.build import blobstore
from epbuild.build.buildreport import CellResult
from epbuild.model.stagegraph import built_pins
from epbuild.registry import push as registry_push
from epbuild.render.bakefile import serving_target
from epbuild.render.dockerfiles import RenderedCell
from epbuild.render.tags import cell_tags
from epbuild.util.commands import CommandFailed, Runner, query, shell_line
from epbuild.util.errors import EpbuildError

log = logging.getLogger(__name__)

OVERRIDE_FILE = "bake-reproducible.json"


def epoch_arg(component: str) -> str:
    return "SOURCE_DATE_EPOCH_" + component.upper().replace("-", "_")


def oci_layout(root: Path, cell: str) -> Path:
    """The cell's OCI image layout (a directory), kept from one build to the next."""
    return root / "build" / "oci" / cell


def kept(root: Path, layout: Path) -> None:
    """After a prune: the layout's blobs shared through the store, and the store's unlinked blobs removed."""
    store = blobstore.store_path(root)
    try:
        blobstore.share(store, layout)
        blobstore.sweep(store)
    except OSError as exc:  # e.g. build/oci and the store on two file systems: no hard links between them
        log.warning("%s keeps its own copy of each blob: cannot link it into %s (%s)", layout, store, exc)


def load_archive(run_dir: Path, cell: str) -> Path:
    """Where the layout is packed for `docker load` (which reads archives only), when the engine lacks the image."""
    return run_dir / f"{cell}.oci.tar"


LOCAL_TREE_EPOCH = 315532800
"""For a component built from a local tree (no commit time): the templates' default, 1980-01-01, the earliest
time a zip entry can hold. A fixed value keeps its stage cached while the tree does not change."""


def cell_epoch(rc: RenderedCell, epochs: Mapping[str, int]) -> int:
    """The newest commit time among the cell's pins: nothing in the image is younger than its youngest input."""
    return max(epochs.get(name, LOCAL_TREE_EPOCH) for name in built_pins(rc.plan))


def _epoch_args(rc: RenderedCell, epochs: Mapping[str, int]) -> dict[str, str]:
    args = {"SOURCE_DATE_EPOCH": str(cell_epoch(rc, epochs))}
    args.update({epoch_arg(name): str(epochs.get(name, LOCAL_TREE_EPOCH)) for name in built_pins(rc.plan)})
    return args


def bake_override(cells: list[RenderedCell], epochs: Mapping[str, int], root: Path,
                  stage_targets: Mapping[str, RenderedCell] | None = None) -> str:
    """A second bake file, laid over the rendered one (and the stage cache's): per cell its epochs and its OCI
    layout as the output, whether the image then goes to the engine or to a registry (push_layout); per stage
    target of the stage cache (`stage_targets`: target -> the cell it is built from) that cell's epochs, so the
    stage is the very one the cell builds and its cache ref serves the cell."""
    targets: dict[str, object] = {target: {"args": _epoch_args(rc, epochs)}
                                  for target, rc in (stage_targets or {}).items()}
    for rc in cells:
        args = _epoch_args(rc, epochs)
        # The serving image goes through the same export, so its layers are the cell's own (same epochs, same
        # rewritten timestamps) and only its config differs.
        for name in (rc.cell.name, serving_target(rc.cell.name)):
            targets[name] = {
                "args": args,
                "output": [f"type=oci,dest={oci_layout(root, name)},tar=false,rewrite-timestamp=true"],
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


def unreferenced_blobs(layout: Path) -> list[Path]:
    """The layout's blobs of earlier exports that its index no longer reaches (ValueError: no readable index)."""
    manifests = _index(layout)["manifests"]
    assert isinstance(manifests, list)
    keep = {_blob(layout, digest) for digest in _referenced(layout, manifests)}
    return sorted(path for path in (layout / "blobs").glob("*/*") if path.is_file() and path not in keep)


def prune_layout(layout: Path) -> int:
    """Removes the blobs of earlier exports that the index no longer reaches; returns how many."""
    removed = unreferenced_blobs(layout)
    for path in removed:
        path.unlink()
    return len(removed)


def layout_lock(root: Path, cell: str) -> Path:
    """The lock file a build holds while it exports into and loads from the cell's layout (layouts_held)."""
    return oci_layout(root, cell).parent / f".{cell}.lock"


@contextlib.contextmanager
def layouts_held(root: Path, cells: list[str]) -> Iterator[None]:
    """Holds the cells' layouts for one build, from the export to the load: a second build of the same cell from
    this checkout waits here rather than have its blobs pruned mid-export. A layout a killed build left without
    a readable index is removed first (it is only a cache; BuildKit could not add to it). Then the store's blobs
    are linked in (blobstore.seed), so the export writes only blobs no kept layout has."""
    with contextlib.ExitStack() as stack:
        for cell in sorted(cells):
            layout = oci_layout(root, cell)
            layout.parent.mkdir(parents=True, exist_ok=True)
            lock = stack.enter_context(open(layout_lock(root, cell), "w"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("another build of %s from this checkout is exporting; waiting for it", cell)
                fcntl.flock(lock, fcntl.LOCK_EX)
            if (layout / "index.json").exists():  # (a layout of seeded blobs alone has none yet: BuildKit adds it)
                try:
                    _index(layout)
                except ValueError as exc:
                    log.warning("%s; starting it again", exc)
                    shutil.rmtree(layout)
            try:
                blobstore.seed(blobstore.store_path(root), layout)
            except OSError as exc:  # no hard links here: BuildKit writes every blob, as it did before the store
                log.warning("cannot link the stored blobs into %s (%s)", layout, exc)
        yield


def load_commands(root: Path, run_dir: Path, cell: str) -> list[list[str]]:
    """Packs the cell's OCI layout (its pruned blobs, see prune_layout) and loads it into the engine."""
    layout, archive = oci_layout(root, cell), load_archive(run_dir, cell)
    return [["tar", "-C", str(layout), "-cf", str(archive), "oci-layout", "index.json", "blobs"],
            ["docker", "load", "--quiet", "--input", str(archive)]]


def hand_over(runner: Runner, root: Path, run_dir: Path, result: CellResult, tags: list[str]) -> None:
    """Hands a cell's image to the engine under the tags bake gave it. An image the engine holds already (a
    rebuild of the same inputs gives the same digest) is only tagged: nothing is packed or loaded, so a no-op
    rebuild costs the export of unchanged blobs (none are written) and one `docker tag`."""
    layout = oci_layout(root, result.cell)
    archive = load_archive(run_dir, result.cell)
    try:
        result.image_id = layout_image_id(layout)
        prune_layout(layout)
        kept(root, layout)
        if query(["docker", "image", "inspect", result.image_id]).returncode != 0:
            for argv in load_commands(root, run_dir, result.cell):
                runner.run(argv, capture=True)
        # The layout's index names the image by bake's tag alone (no registry part), which the engine may read
        # otherwise: the tags are set from the ID either way.
        for tag in tags:
            runner.run(["docker", "tag", result.image_id, tag], capture=True)
    except (CommandFailed, ValueError) as exc:
        result.ok = False
        result.error = f"built, but not loaded into the engine: {exc}"
    finally:
        archive.unlink(missing_ok=True)


def immutable_tags(cells: list[RenderedCell], keys: Mapping[str, str], registry: str) -> dict[str, str]:
    """Where --push puts each cell: its immutable tag in `registry`, from the content key the build resolved."""
    return {rc.cell.name: cell_tags(rc, keys[rc.cell.name], registry).immutable for rc in cells}


def push_layout(runner: Runner, root: Path, result: CellResult, ref: str) -> None:
    """Pushes a cell's image from its OCI layout to the registry under `ref` (its immutable tag), bytes unchanged:
    the digest in the registry is the one a local build of the same inputs loads (see epbuild/registry/push.py)."""
    layout = oci_layout(root, result.cell)
    try:
        result.image_id = layout_image_id(layout)
        prune_layout(layout)
        kept(root, layout)
        runner.record(shell_line(["python3", "-m", "epbuild.registry.push", str(layout), ref]))
        registry_push.push_layout(layout, ref)
    except (EpbuildError, ValueError, OSError) as exc:
        result.ok = False
        result.error = f"built, but not pushed to {ref}: {exc}"
