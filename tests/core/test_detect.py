"""`invoke pull --detect` reads the host from sysfs; the tests write the trees a real host would have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from epbuild.detect import detect, gfx_name
from epbuild.errors import EpbuildError

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize("vendor,nic", [("0x15b3", "cx7"), ("0x1dd8", "io"), ("0x14e4", "thor2")])
def test_one_gpu_kind_and_one_nic_kind(tmp_path: Path, vendor: str, nic: str) -> None:
    found = detect(sysfs(tmp_path, [90500] * 8, {f"rdma{i}": vendor for i in range(8)}))
    assert (found.arch, found.nic) == ("gfx950", nic)
    assert "gfx950" in found.report and "rdma0" in found.report


def test_no_gpu_stops_and_asks(tmp_path: Path) -> None:
    with pytest.raises(EpbuildError, match="found no AMD GPU.*--arch and --nic"):
        detect(sysfs(tmp_path, [], {"mlx5_0": "0x15b3"}))


def test_several_candidates_stop_and_ask(tmp_path: Path) -> None:
    with pytest.raises(EpbuildError, match="several NIC kinds.*--arch and --nic"):
        detect(sysfs(tmp_path, [90402], {"mlx5_0": "0x15b3", "bnxt_re0": "0x14e4"}))
    with pytest.raises(EpbuildError, match="several GPU archs"):
        detect(sysfs(tmp_path / "b", [90402, 90500], {"mlx5_0": "0x15b3"}))
    with pytest.raises(EpbuildError, match="no supported RDMA NIC"):
        detect(sysfs(tmp_path / "c", [90402], {"irdma0": "0x8086"}))


def test_pull_detect_reports_what_it_found(tmp_path: Path) -> None:
    root = sysfs(tmp_path, [90402, 90402], {"ionic_0": "0x1dd8"})
    # A matrix that pins the base digest and full commits, so the content key is known without the engine or a
    # fetch. Nothing listens on port 9: the pull after the detection must fail cleanly, naming the registry.
    data = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    data["base"]["digest"] = "sha256:" + "ab" * 32
    for pin in data["components"].values():
        pin["commit"] = pin["commit"].ljust(40, "0")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "invoke", "pull", "--detect", "--sysfs-root", str(root),
                           "--matrix", str(matrix), "--registry", "127.0.0.1:9/epbuild"], cwd=ROOT,
                          capture_output=True, text=True)
    assert "detected GPUs: gfx942, gfx942; RDMA devices: ionic_0 (AMD Pensando): cell gfx942-io" in proc.stdout
    assert proc.returncode == 2 and "cannot read 127.0.0.1:9/epbuild/rocm/vllm-ep:gfx942-io" in proc.stderr
    assert "Traceback" not in proc.stderr
