"""Issue 3: the offline example builds for real with BuildKit, the images carry what the matrix says, a second
build executes no RUN step, and a broken stand-in fails only its own cell."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from epbuild.checks.offload import file_gpu_archs
from epbuild.offline import matrix_variant

from harness import OFFLINE, ROOT, InvokeResult, cells_json, docker_run, invoke, own_image

# Each pins stand-in commits through matrix_variant, which reads the stand-ins' commits.json.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]


def test_both_cells_build_and_are_tagged_as_matrix_json_says(offline_build: InvokeResult) -> None:
    cells = cells_json()
    summary = offline_build.summary
    assert summary["ok"]
    results = {c["cell"]: c for c in summary["cells"]}
    for name in ("gfx950-cx7-sid", "gfx942-thor2-sid"):
        assert results[name]["ok"]
        tag = own_image(cells[name])
        image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True,
                                  text=True, check=True).stdout.strip()
        assert image_id == results[name]["image_id"]


def test_rdma_core_from_debian_source_in_cx7_and_absent_in_thor2(offline_build: InvokeResult) -> None:
    cells = cells_json()
    matrix = yaml.safe_load((ROOT / OFFLINE).read_text())
    version = matrix["components"]["rdma-core"]["tag"].removeprefix("v")
    cx7 = own_image(cells["gfx950-cx7-sid"])
    target = docker_run(cx7, "readlink", "-f", "/usr/lib/x86_64-linux-gnu/libibverbs.so.1").strip()
    assert target.endswith(f".{version}"), target
    owned = subprocess.run(["docker", "run", "--rm", "--entrypoint", "dpkg", cx7, "-S", target], capture_output=True)
    assert owned.returncode != 0, f"{target} should be the source build, not a Debian package's file"
    thor2 = own_image(cells["gfx942-thor2-sid"])
    assert "rdma-core" not in json.loads(docker_run(thor2, "cat", "/opt/epbuild/manifest.json"))["components"]
    target = docker_run(thor2, "readlink", "-f", "/usr/lib/x86_64-linux-gnu/libibverbs.so.1").strip()
    assert subprocess.run(["docker", "run", "--rm", "--entrypoint", "dpkg", thor2, "-S", target],
                          capture_output=True).returncode == 0


def test_rocshmem_device_code_is_exactly_the_cell_arch(offline_build: InvokeResult, tmp_path: Path) -> None:
    cells = cells_json()
    for name, arch in (("gfx950-cx7-sid", "gfx950"), ("gfx942-thor2-sid", "gfx942")):
        container = subprocess.run(["docker", "create", "--entrypoint", "true", own_image(cells[name])], capture_output=True, text=True,
                                   check=True).stdout.strip()
        try:
            dest = tmp_path / f"{name}.a"
            subprocess.run(["docker", "cp", f"{container}:/opt/rocshmem/lib/librocshmem.a", str(dest)], check=True)
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True)
        assert file_gpu_archs(dest) == {arch}


def test_manifest_in_the_image_matches_the_matrix(offline_build: InvokeResult) -> None:
    cells = cells_json()
    for name in ("gfx950-cx7-sid", "gfx942-thor2-sid"):
        manifest = json.loads(docker_run(own_image(cells[name]), "cat", "/opt/epbuild/manifest.json"))
        assert manifest["content_key"] == cells[name]["content_key"]
        assert {k: v.get("commit") for k, v in manifest["components"].items()} == {
            k: v["commit"] for k, v in cells[name]["components"].items()}


def test_the_image_runs(offline_build: InvokeResult) -> None:
    image = own_image(cells_json()["gfx950-cx7-sid"])
    out = docker_run(image, "python3", "-c", "import deep_ep, mori.ops, aiter, vllm; print('ok')")
    assert out.strip() == "ok"


def test_second_build_executes_no_run_step(offline_build: InvokeResult) -> None:
    again = invoke("build", "--matrix", OFFLINE, "--cell", "gfx950-cx7-sid", "--cell", "gfx942-thor2-sid", "--quiet",
                   check=True)
    summary = again.summary
    assert summary["ok"] and summary["run_steps"] > 0
    assert summary["executed_run_steps"] == []


def test_a_broken_stand_in_fails_its_cell_and_the_other_completes(offline_build: InvokeResult,
                                                                   tmp_path: Path) -> None:
    matrix = matrix_variant(tmp_path, broken=["deepep"], image_name="epbuild-offline/broken")
    invoke("render", "--matrix", str(matrix), check=True)
    result = invoke("build", "--matrix", str(matrix), "--cell", "gfx950-cx7-sid", "--cell", "gfx942-thor2-sid", "--quiet")
    assert result.code != 0
    cells = {c["cell"]: c for c in result.summary["cells"]}
    assert cells["gfx950-cx7-sid"]["ok"], cells
    assert not cells["gfx942-thor2-sid"]["ok"] and cells["gfx942-thor2-sid"]["failed_stage"] == "deepep"
    table = result.out
    assert "gfx942-thor2-sid" in table and "FAILED" in table and "deepep" in table


def test_a_cell_on_the_second_base_builds_from_it_and_passes_its_checks(offline_build: InvokeResult) -> None:
    # The offline example's trixie cell: trixie's own HIP toolchain (LLVM 17), nothing taken from sid's stages.
    cell = "gfx942-thor2-trixie"
    built = invoke("build", "--matrix", OFFLINE, "--cell", cell, "--quiet", check=True)
    image = cells_json()[cell]["image"]
    os_release = docker_run(image, "cat", "/etc/os-release")
    assert "VERSION_CODENAME=trixie" in os_release, os_release
    manifest = json.loads(docker_run(image, "cat", "/opt/epbuild/manifest.json"))
    trixie = yaml.safe_load((ROOT / OFFLINE).read_text())["bases"]["trixie"]["image"]
    assert manifest["base"] == "trixie" and manifest["base_image"] == trixie
    assert built.summary["ok"]
    checked = invoke("test", "--matrix", OFFLINE, "--cell", cell, "--quiet")
    assert checked.code == 0 and f"{cell}: ok:" in checked.out, checked.out + checked.err


def test_preflight_refuses_a_flag_the_pin_lacks_before_bake(tmp_path: Path) -> None:
    """DeepEP's pinned stand-in (like a9ea9774) has no --rocm-gfx942-fp8-fnuz-max: `invoke build` stops after the
    fetch, naming component, pin, flag and matrix key, and never starts bake (tests/core/test_preflight.py shows the
    same setting passing at the stand-in's later commit that has the flag)."""
    fnuz = {"deepep": {"gfx942_fp8_fnuz_max": 224}}
    matrix = matrix_variant(tmp_path / "pinned", options=fnuz, image_name="epbuild-offline/preflight")
    invoke("render", "--matrix", str(matrix), check=True)
    logs = ROOT / "build" / "logs"
    before = set(logs.iterdir()) if logs.exists() else set()
    result = invoke("build", "--matrix", str(matrix), "--cell", "gfx950-cx7-sid", "--quiet")
    assert result.code == 2, result.out + result.err
    commit = yaml.safe_load(matrix.read_text())["components"]["deepep"]["commit"]
    for part in (f"deepep at {commit[:12]}", "--rocm-gfx942-fp8-fnuz-max", "components.deepep.gfx942_fp8_fnuz_max",
                 "nothing was built"):
        assert part in result.err, result.err
    runs = [d for d in logs.iterdir() if d not in before]
    assert runs and all("buildx bake" not in (d / "replay.sh").read_text() for d in runs)
