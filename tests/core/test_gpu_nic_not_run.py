"""The GPU tier's NIC smoke test on an agent without the cell's NIC: reported "not run", never a pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.checks.imagetest import CheckRun, _read_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("devices", [{}, {"mlx5_0": "0x15b3"}], ids=["no RDMA device", "another NIC's device"])
def test_nic_smoke_test_is_not_run_without_the_cells_nic(tmp_path: Path, devices: dict[str, str]) -> None:
    sysfs = tmp_path / "sys"
    for name, vendor in devices.items():
        (sysfs / "class" / "infiniband" / name / "device").mkdir(parents=True)
        (sysfs / "class" / "infiniband" / name / "device" / "vendor").write_text(vendor + "\n")
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"image": "epbuild-offline/stack:gfx950-thor2-sid", "record": {
        "cell": "gfx950-thor2-sid", "nic": "thor2", "provider": "bnxt_re", "provider_library": "libbnxt_re",
        "components": {}}, "nic_userspace": {"pci_vendors": ["0x14e4"]}}))
    report = tmp_path / "report.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "epbuild" / "checks" / "gpu" / "test_nic.py"),
                           "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=xunit2",
                           "--rootdir", str(ROOT / "epbuild" / "checks" / "gpu"), "-q"], cwd=ROOT, capture_output=True, text=True,
                          env={"EPBUILD_EXPECTED": str(expected), "EPBUILD_SYSFS_ROOT": str(sysfs),
                               "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    run = CheckRun("gfx950-thor2", "image", report)
    _read_report(run, proc.returncode)
    assert run.passed == 0 and not run.failed, proc.stdout
    assert len(run.checks_not_run) == 2 and all("not run: this host has no thor2 RDMA device" in line
                                                for line in run.checks_not_run), run.checks_not_run
