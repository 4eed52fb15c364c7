"""The committed offload bundles (tests/data/offload/) are what the real toolchain makes today: make.sh run again
in the offline example's base image (hipcc, clang-offload-bundler of LLVM 21) lists the same triples, and the
reader agrees with the fresh files as with the committed ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

from epbuild.checks.offload import bundle_triples
from epbuild.offline.settings import OFFLINE_BASE_IMAGE

from harness import InvokeResult

DATA = Path(__file__).resolve().parents[1] / "data" / "offload"



def test_the_toolchain_makes_the_committed_bundles_again(offline_build: InvokeResult, tmp_path: Path) -> None:
    shutil.copy(DATA / "make.sh", tmp_path / "make.sh")
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/out", "--entrypoint",
                           "bash", OFFLINE_BASE_IMAGE, "/out/make.sh"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = (tmp_path / "listing.txt").read_text()
    assert fresh == (DATA / "listing.txt").read_text()
    for line in fresh.splitlines():
        name, _, triples = line.partition("\t")
        assert set(bundle_triples((tmp_path / name).read_bytes())) == set(triples.split(",")), name
