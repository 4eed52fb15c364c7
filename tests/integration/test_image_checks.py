"""Issue 4: the in-image checks pass on a good image (each is seen failing on a derived broken image in
test_checks_seen_failing.py), and the GPU tier says plainly when it cannot run, or in a dry run what it would run."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

from harness import OFFLINE, InvokeResult, invoke

CELL = "gfx950-cx7-sid"


def test_good_image_passes(offline_build: InvokeResult) -> None:
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--quiet")
    assert result.code == 0, result.out + result.err
    assert f"{CELL}: ok:" in result.out and " 0 failed" in result.out


def test_gpu_tier_says_clearly_that_nothing_ran_without_a_gpu(offline_build: InvokeResult, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "class" / "kfd" / "kfd" / "topology" / "nodes" / "0").mkdir(parents=True)
    (tmp_path / "class/kfd/kfd/topology/nodes/0/properties").write_text("cpu_cores_count 64\ngfx_target_version 0\n")
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", env={"EPBUILD_SYSFS_ROOT": str(tmp_path)})
    assert result.code == 0
    assert "not run: no AMD GPU" in result.out


def test_gpu_tier_refuses_a_host_whose_gpus_cannot_run_the_cell(offline_build: InvokeResult, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = tmp_path / "class" / "kfd" / "kfd" / "topology" / "nodes" / "1"
    node.mkdir(parents=True)
    (node / "properties").write_text("gfx_target_version 90402\n")  # an MI325X: gfx942
    env = {"EPBUILD_SYSFS_ROOT": str(tmp_path)}
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", env=env)
    assert result.code == 0 and "this host's GPUs are gfx942" in result.out and "gfx950 only" in result.out
    strict = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", "--require-gpu", env=env)
    assert strict.code == 1


def test_gpu_dry_run_prints_each_case_on_a_host_without_gpus(docker_engine: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "sys"  # no GPU at all, and no image needed: a dry run runs nothing
    empty.mkdir()
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", "--dry-run",
                    env={"EPBUILD_SYSFS_ROOT": str(empty), "EPBUILD_NUM_GPUS": "2"})
    assert result.code == 0, result.out + result.err
    assert f"{CELL}: ok: 0 passed, 0 failed" in result.out, result.out
    for backend in ("deepep_high_throughput", "deepep_low_latency", "mori_high_throughput", "mori_low_latency"):
        assert f"--all2all-backend={backend}" in result.out and f"not run: dry run ({backend})" in result.out
    assert "not run: dry run (eplb)" in result.out
