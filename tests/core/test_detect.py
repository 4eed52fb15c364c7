"""`invoke pull --detect` reads the host from sysfs; the tests write the trees a real host would have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from epbuild.checks.detect import detect, gfx_name
from epbuild.model.matrix import Matrix
from epbuild.model.yamlfile import dump_yaml
from epbuild.util.errors import EpbuildError

ROOT = Path(__file__).resolve().parents[2]
DATA = yaml.safe_load((ROOT / "matrix.yaml").read_text())
MATRIX = Matrix.model_validate(DATA)
NO_ROCM = Path("/nonexistent/rocm/version")
# (PCI vendor, NIC) as the matrix file lists them: the expectation comes from the YAML, not from detect's tables.
VENDORS = [(vendor, nic) for nic, info in DATA["nics"].items() for vendor in info["pci_vendors"]]


def sysfs(tmp_path: Path, gfx_versions: list[int], vendors: dict[str, str]) -> Path:
    nodes = tmp_path / "class" / "kfd" / "kfd" / "topology" / "nodes"
    for i, version in enumerate([0, *gfx_versions]):  # node 0 is the CPU, as on a real host
        (nodes / str(i)).mkdir(parents=True)
        (nodes / str(i) / "properties").write_text(f"cpu_cores_count 0\ngfx_target_version {version}\nsimd_count 4\n")
    for name, vendor in vendors.items():
        (tmp_path / "class" / "infiniband" / name / "device").mkdir(parents=True)
        (tmp_path / "class" / "infiniband" / name / "device" / "vendor").write_text(vendor + "\n")
    return tmp_path


def test_gfx_target_versions() -> None:
    assert gfx_name(90402) == "gfx942" and gfx_name(90500) == "gfx950" and gfx_name(90010) == "gfx90a"


@pytest.mark.parametrize("vendor,nic", VENDORS)
def test_one_gpu_kind_and_one_nic_kind(tmp_path: Path, vendor: str, nic: str) -> None:
    found = detect(sysfs(tmp_path, [90500] * 8, {f"rdma{i}": vendor for i in range(8)}), MATRIX, NO_ROCM)
    assert (found.arch, found.nic, found.base) == ("gfx950", nic, "rocm72")
    assert "gfx950" in found.report and "rdma0" in found.report


def test_no_gpu_stops_and_asks(tmp_path: Path) -> None:
    with pytest.raises(EpbuildError, match="found no AMD GPU.*--arch and --nic"):
        detect(sysfs(tmp_path, [], {"mlx5_0": "0x15b3"}), MATRIX, NO_ROCM)


def test_several_candidates_stop_and_ask(tmp_path: Path) -> None:
    with pytest.raises(EpbuildError, match="several NIC kinds.*--arch and --nic"):
        detect(sysfs(tmp_path, [90402], {"mlx5_0": "0x15b3", "bnxt_re0": "0x14e4"}), MATRIX, NO_ROCM)
    with pytest.raises(EpbuildError, match="several GPU archs"):
        detect(sysfs(tmp_path / "b", [90402, 90500], {"mlx5_0": "0x15b3"}), MATRIX, NO_ROCM)
    with pytest.raises(EpbuildError, match="no supported RDMA NIC"):
        detect(sysfs(tmp_path / "c", [90402], {"irdma0": "0x8086"}), MATRIX, NO_ROCM)


def two_bases() -> Matrix:
    data = {**DATA, "bases": {**DATA["bases"], "rocm70": {"image": "docker.io/rocm/vllm-dev:base-7.0",
                                                           "rocm_version": "7.0"}},
            "axes": {**DATA["axes"], "base": ["rocm72", "rocm70"]}}
    return Matrix.model_validate(data)


def test_the_host_rocm_release_picks_the_base(tmp_path: Path) -> None:
    version = tmp_path / "version"
    version.write_text("7.0.2-56\n")
    found = detect(sysfs(tmp_path, [90402], {"mlx5_0": "0x15b3"}), two_bases(), version)
    assert found.base == "rocm70" and "ROCm 7.0.2" in found.report
    version.write_text("7.2.1-43\n")
    assert detect(sysfs(tmp_path / "b", [90402], {"mlx5_0": "0x15b3"}), two_bases(), version).base == "rocm72"
    # Unreadable: every base stays selected. A release no base carries: stop and ask.
    assert detect(sysfs(tmp_path / "c", [90402], {"mlx5_0": "0x15b3"}), two_bases(), NO_ROCM).base is None
    version.write_text("6.4.0\n")
    with pytest.raises(EpbuildError, match="cannot pick one base for the host's ROCm 6.4.0.*--base"):
        detect(sysfs(tmp_path / "d", [90402], {"mlx5_0": "0x15b3"}), two_bases(), version)


def test_pull_detect_reports_what_it_found(tmp_path: Path) -> None:
    root = sysfs(tmp_path, [90402, 90402], {"ionic_0": "0x1dd8"})
    # A matrix that pins the base digest and full commits, so the content key is known without the engine or a
    # fetch. Nothing listens on port 9: the pull after the detection must fail cleanly, naming the registry.
    data = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    for base in data["bases"].values():
        base["digest"] = "sha256:" + "ab" * 32
    for pin in data["components"].values():
        pin["commit"] = pin["commit"].ljust(40, "0")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(dump_yaml(data))
    proc = subprocess.run([sys.executable, "-m", "invoke", "pull", "--detect", "--sysfs-root", str(root),
                           "--rocm-version-file", str(NO_ROCM), "--matrix", str(matrix),
                           "--registry", "127.0.0.1:9/epbuild"], cwd=ROOT, capture_output=True, text=True)
    assert "detected GPUs: gfx942, gfx942; RDMA devices: ionic_0 (AMD Pensando Pollara AI NIC)" in proc.stdout
    assert "arch gfx942, nic io, base rocm72" in proc.stdout
    assert proc.returncode == 2 and "cannot read 127.0.0.1:9/epbuild/rocm/vllm-ep:gfx942-io" in proc.stderr
    assert "Traceback" not in proc.stderr
