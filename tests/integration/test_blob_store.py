"""Two builds of different cells from one checkout at once, against the real engine: both succeed, each cell's
layout keeps every blob its image names with the bytes its digest says, every blob is a hard link into the one
content store (so the base image's layers, which both cells name, are on disk once), and the store holds no blob
that no layout links."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.build import blobstore, reproducible

from harness import OFFLINE, ROOT

pytestmark = pytest.mark.docker

CELLS = ("gfx950-cx7-sid", "gfx942-thor2-sid")


def reachable(layout: Path) -> set[str]:
    """Every blob the layout's index reaches, read as the OCI image spec lays it out."""
    found: set[str] = set()
    todo = list(json.loads((layout / "index.json").read_text())["manifests"])
    while todo:
        descriptor = todo.pop()
        digest = descriptor["digest"].removeprefix("sha256:")
        found.add(digest)
        if descriptor["mediaType"].endswith(("manifest.v1+json", "index.v1+json")):
            document = json.loads((layout / "blobs" / "sha256" / digest).read_text())
            todo += document.get("manifests", []) + document.get("layers", [])
            todo += [document["config"]] if "config" in document else []
    return found


def names(layout: Path) -> set[str]:
    return {p.name for p in (layout / "blobs" / "sha256").iterdir()}


def test_two_cells_built_at_once_leave_a_consistent_shared_store(docker_engine: None) -> None:
    builds = [subprocess.Popen([sys.executable, "-m", "invoke", "build", "--matrix", OFFLINE, "--cell", cell,
                                "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for cell in CELLS]
    for build in builds:
        out, err = build.communicate(timeout=7200)
        assert build.returncode == 0, out[-2000:] + err[-2000:]
    store = blobstore.store_path(ROOT) / "blobs" / "sha256"
    layouts = [reproducible.oci_layout(ROOT, cell) for cell in CELLS]
    for layout in layouts:
        assert names(layout) == reachable(layout)  # every blob the image names is there, and no other
        for path in (layout / "blobs" / "sha256").iterdir():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
            assert os.path.samefile(path, store / path.name), path
    shared = names(layouts[0]) & names(layouts[1])
    assert shared  # the base image's layers: named by both, stored once (checked by samefile above)
    assert all((store / name).stat().st_nlink >= 3 for name in shared)
    assert [p for p in store.iterdir() if p.stat().st_nlink == 1] == []
