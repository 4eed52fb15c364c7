"""The OCI layout a cell is exported to (epbuild/build/reproducible.py), against BuildKit's own exporter and the engine:
a second export into the same folder leaves one image there after pruning, the ID read from the layout is the one
the engine gives the loaded image, and what the engine runs is the second export's content."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

from epbuild.build import reproducible

from harness import OFFLINE, ROOT, InvokeResult, invoke


def export(context: Path, layout: Path, tag: str, content: str) -> None:
    (context / "f").write_text(content)
    subprocess.run(["docker", "buildx", "build", "--quiet", "--tag", tag, "--build-arg", "SOURCE_DATE_EPOCH=1000",
                    "--output", f"type=oci,dest={layout},tar=false,rewrite-timestamp=true", str(context)],
                   check=True, capture_output=True, text=True)


def blobs(layout: Path) -> set[str]:
    return {f"sha256:{path.name}" for path in (layout / "blobs" / "sha256").iterdir()}


def blob_files(layout: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns)
            for path in (layout / "blobs" / "sha256").iterdir()}


def test_a_re_export_prunes_to_one_image_that_loads_under_its_layout_id(tmp_path: Path, docker_engine: None) -> None:
    context, layout = tmp_path / "context", tmp_path / "layout"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    tag = f"epbuild-test/oci-layout:{uuid.uuid4().hex[:12]}"
    export(context, layout, tag, "first\n")
    first_id, first_blobs = reproducible.layout_image_id(layout), blobs(layout)
    export(context, layout, tag, "second\n")
    second_id = reproducible.layout_image_id(layout)
    assert second_id != first_id and first_id in blobs(layout)  # BuildKit keeps the old image's blobs
    removed = reproducible.prune_layout(layout)
    # What stays: the second image's manifest, config and one layer; each of the first's own blobs is gone.
    assert len(blobs(layout)) == 3 and second_id in blobs(layout) and not (first_blobs & blobs(layout))
    assert removed == len(first_blobs)
    archive = tmp_path / "image.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(archive), "oci-layout", "index.json", "blobs"], check=True)
    try:
        subprocess.run(["docker", "load", "--quiet", "--input", str(archive)], check=True, capture_output=True)
        loaded = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", second_id],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert loaded == second_id
        container = subprocess.run(["docker", "create", second_id, "x"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        try:
            copied = subprocess.run(["docker", "cp", f"{container}:/f", "-"], capture_output=True, check=True).stdout
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True)
        assert b"second\n" in copied
    finally:
        subprocess.run(["docker", "image", "rm", "--force", second_id], capture_output=True)


def test_a_no_op_rebuild_writes_nothing_and_loads_nothing(offline_build: InvokeResult) -> None:
    """The cell's layout survives the build; building it again with nothing changed writes no blob into it (every
    blob keeps its inode and time) and hands nothing to the engine but a tag of the same image."""
    (cell,) = [c for c in offline_build.summary["cells"] if c["cell"] == "gfx950-cx7-sid"]
    # Built once more first: the local tag is shared, and another checkout may have moved it since the fixture
    # ran, so that this build would rightly load the image again.
    warm = invoke("build", "--matrix", OFFLINE, "--cell", "gfx950-cx7-sid", "--quiet", check=True)
    layout = reproducible.oci_layout(ROOT, "gfx950-cx7-sid")
    before = blob_files(layout)
    assert warm.summary["cells"][0]["image_id"] == cell["image_id"]
    assert cell["image_id"].removeprefix("sha256:") in before  # the image the build reported is the layout's
    again = invoke("build", "--matrix", OFFLINE, "--cell", "gfx950-cx7-sid", "--quiet", check=True)
    after = blob_files(layout)
    assert again.summary["cells"][0]["image_id"] == cell["image_id"] and after == before
    replay = (again.run_dir / "replay.sh").read_text()
    assert f"docker tag {cell['image_id']}" in replay and "docker load" not in replay and "tar -C" not in replay
