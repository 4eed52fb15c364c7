"""A cell whose NIC a pinned component cannot drive fails before bake: the offline example with the MoRI
stand-in's pinned commit (2d02c6a9's model: providers bnxt, ibverbs, mlx5, no ionic) on a Pollara (io) cell."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from epbuild.offline import matrix_variant

from harness import ROOT, invoke

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]


def test_an_io_cell_with_a_mori_without_ionic_fails_before_bake_naming_the_nic(tmp_path: Path) -> None:
    matrix = matrix_variant(tmp_path / "no-ionic", at={"mori": "pinned"},
                            options={"mori": {"nic_build_flags": {"bnxt_re": "USE_BNXT"}}},
                            image_name="epbuild-offline/nic-preflight")
    invoke("render", "--matrix", str(matrix), check=True)
    logs = ROOT / "build" / "logs"
    before = set(logs.iterdir()) if logs.exists() else set()
    result = invoke("build", "--matrix", str(matrix), "--cell", "gfx950-io-sid", "--quiet")
    assert result.code == 2, result.out + result.err
    commit = yaml.safe_load(matrix.read_text())["components"]["mori"]["commit"]
    for part in (f"gfx950-io-sid: mori at {commit[:12]} cannot drive NIC io", "needs provider 'ionic'",
                 "bnxt, ibverbs, mlx5", "nothing was built"):
        assert part in result.err, result.err
    runs = [d for d in logs.iterdir() if d not in before]
    assert runs and all("buildx bake" not in (d / "replay.sh").read_text() for d in runs)
