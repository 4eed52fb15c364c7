"""Two builds of different cells from one checkout at once, against the real engine: both succeed, each cell's
layout keeps every blob its image names with the bytes its digest says, every blob is a hard link into the one
content store (so the base image's layers, which both cells name, are on disk once), and the store holds no blob
that no layout links."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild import blobstore, reproducible
from harness import OFFLINE, ROOT

pytestmark = pytest.mark.docker

CELLS = ("gfx950-cx7-sid", "gfx942-thor2-sid")


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
        assert reproducible.unreferenced_blobs(layout) == []  # every blob is one the index reaches, and it is there
        for path in (layout / "blobs" / "sha256").iterdir():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
            assert os.path.samefile(path, store / path.name), path
    shared = names(layouts[0]) & names(layouts[1])
    assert shared  # the base image's layers: named by both, stored once (checked by samefile above)
    assert all((store / name).stat().st_nlink >= 3 for name in shared)
    assert [p for p in store.iterdir() if p.stat().st_nlink == 1] == []
