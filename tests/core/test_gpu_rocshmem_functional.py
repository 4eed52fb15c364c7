"""The GPU tier's run of rocSHMEM's functional tests, proven here without a GPU. Its log reading against driver
logs modelled on upstream's (epbuild/checks/gpu/logs/README.md); and the tier's own test end to end, with fake
GPUs (sysfs) and a stand-in `docker` that runs the command on this host against an install prefix the test lays
out: the rocSHMEM stand-in's driver (scripts/functional_tests/driver.sh, as the stage installs it) with a tester
that passes or fails, or no tester at all."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


from epbuild.checks.imagetest import CheckRun, _read_report
from epbuild.components.rocshmem import FUNCTIONAL_DRIVER, FUNCTIONAL_TESTER

ROOT = Path(__file__).resolve().parents[2]
GPU_CHECKS = ROOT / "epbuild" / "checks" / "gpu"
LOGS = GPU_CHECKS / "logs"
STAND_IN_DRIVER = ROOT / "epbuild/components/rocshmem/fixture/projects/rocshmem/scripts/functional_tests/driver.sh"
CASE = "test_rocshmem_functional::test_rocshmem_functional_tests"
sys.path.insert(0, str(GPU_CHECKS))

from rocshmem_driver_log import problems, read  # noqa: E402

# The stand-in docker: `docker run ... --entrypoint <program> <image> <args>` runs <program> <args> here, with the
# tier's log folder in the image moved under the test's folder, and only the tools the test lays out on PATH (so
# whether an mpirun exists is the test's choice, not this host's).
FAKE_DOCKER = """#!{python}
import os, sys
args = sys.argv[1:]
at = args.index("--entrypoint")
program, rest = args[at + 1], args[at + 3:]
rest = [{logs!r} if arg == "/tmp/rocshmem-functional-logs" else arg for arg in rest]
os.environ["PATH"] = {tools!r}
os.execvp(program, [program, *rest])
"""
TOOLS = ("bash", "sh", "grep", "timeout", "env", "mkdir", "cat", "id", "wc")
"""What the tier's script, the stand-in driver and the fake tester run."""
# An mpirun that starts one rank of the program after its options, as Open MPI would (with its local rank).
FAKE_MPIRUN = """#!/bin/sh
while [ ! -x "$1" ]; do shift; done
OMPI_COMM_WORLD_LOCAL_RANK=0 exec "$@"
"""


def test_a_good_run_passes() -> None:
    log = (LOGS / "rocshmem-functional-passed.log").read_text()
    assert problems(log) == []
    assert len(read(log).ran) == 6 and read(log).skipped == ["alltoall_n4_w1_z256_v1073741824B"]


def test_a_test_failing_even_when_rerun_fails_the_run() -> None:
    found = problems((LOGS / "rocshmem-functional-failed.log").read_text())
    assert found == ["rocSHMEM's functional tests failed (1 of 3): amo_fadd_n2_w1_z1"]


def test_a_failure_the_drivers_rerun_cleared_passes_as_the_driver_says() -> None:
    assert problems((LOGS / "rocshmem-functional-passed-on-retry.log").read_text()) == []


def test_a_run_that_skipped_every_test_fails_although_the_driver_says_passed() -> None:
    log = (LOGS / "rocshmem-functional-all-skipped.log").read_text()
    assert "TESTS PASSED" in log
    assert problems(log) == ["rocSHMEM's functional-test driver ran no test (skipped 2: put_n2_w1_z1_1048576B, "
                             "amo_fadd_n2_w1_z1)"]


def fake_tester(failing: int | None) -> str:
    """A functional tester: exits 1 for test number `failing` (-a), else 0."""
    fail = f'[ "$n" = {failing} ] && {{ echo "test $n: the put did not arrive" >&2; exit 1; }}' if failing else ":"
    return ('#!/bin/sh\nn=\nwhile [ $# -gt 0 ]; do [ "$1" = -a ] && n=$2; shift; done\n'
            f'{fail}\necho "test $n: passed"\n')


def run_tier(tmp_path: Path, *, tester_text: str | None, driver_text: str | None = None, dry_run: bool = False,
             components: tuple[str, ...] = ("rocshmem",), mpirun: bool = False) -> tuple[CheckRun, str]:
    sysfs = tmp_path / "sys" / "class/kfd/kfd/topology/nodes"
    for node in ("1", "2"):  # two gfx950 GPUs
        (sysfs / node).mkdir(parents=True)
        (sysfs / node / "properties").write_text("gfx_target_version 90500\n")
    prefix = tmp_path / "opt" / "rocshmem"
    driver = prefix / FUNCTIONAL_DRIVER
    driver.parent.mkdir(parents=True)
    if driver_text is None:
        shutil.copyfile(STAND_IN_DRIVER, driver)
    else:
        driver.write_text(driver_text)
    if tester_text is not None:
        (driver.parent / FUNCTIONAL_TESTER).write_text(tester_text)
        (driver.parent / FUNCTIONAL_TESTER).chmod(0o755)
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool, path="/usr/bin:/bin")
        assert found, f"{tool} is needed on this host"
        (tools / tool).symlink_to(found)
    if mpirun:
        (tools / "mpirun").write_text(FAKE_MPIRUN)
        (tools / "mpirun").chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\nexit 99\n" if dry_run else
                      FAKE_DOCKER.format(python=sys.executable, logs=str(tmp_path / "logs"), tools=str(tools)))
    docker.chmod(0o755)
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"image": "epbuild-offline/stack:gfx950-cx7-sid", "record": {
        "cell": "gfx950-cx7-sid", "archs": ["gfx950"],
        "components": {name: {"commit": "x", "copies": [str(prefix)]} for name in components}}}))
    report = tmp_path / "report.xml"
    env = {"EPBUILD_EXPECTED": str(expected), "EPBUILD_SYSFS_ROOT": str(tmp_path / "sys"), "EPBUILD_NUM_GPUS": "2",
           "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    if dry_run:
        env["EPBUILD_GPU_DRY_RUN"] = "1"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(GPU_CHECKS / "test_rocshmem_functional.py"),
                           "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=xunit2",
                           "--rootdir", str(GPU_CHECKS), "-q", "-s", "-rs"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    run = CheckRun("gfx950-cx7-sid", "image", report)
    _read_report(run, proc.returncode)
    return run, proc.stdout + proc.stderr


def test_the_tier_runs_the_pins_driver_with_the_installed_tester_and_passes(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, tester_text=fake_tester(None))
    assert (run.passed, run.failed) == (1, []), out
    # The driver ran each test of its `all` suite through the tester, on the single-node runtime (no mpirun here).
    logs = sorted(p.name for p in (tmp_path / "logs").glob("*.log"))
    assert "amo_fadd_n2_w1_z1.log" in logs and "put_n2_w1_z1_1048576B.log" in logs, logs
    put = (tmp_path / "logs" / "put_n2_w1_z1_1048576B.log").read_text()
    assert f"ROCSHMEM_SLR_NP=2 {tmp_path}/opt/rocshmem/share/rocshmem/{FUNCTIONAL_TESTER} -a 2" in put, put
    assert "test 2: passed" in put


def test_the_tier_lets_the_driver_launch_with_mpirun_where_the_image_has_it(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, tester_text=fake_tester(None), mpirun=True)
    assert (run.passed, run.failed) == (1, []), out
    put = (tmp_path / "logs" / "put_n2_w1_z1_1048576B.log").read_text()
    assert put.startswith("# mpirun -n 2 ") and "ROCSHMEM_SLR_NP" not in put, put


def test_the_tier_fails_when_a_functional_test_fails(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, tester_text=fake_tester(4))  # 4: amo_fadd in the driver's table
    assert run.failed == [CASE], out
    assert "TESTS FAILED:  amo_fadd_n2_w1_z1" in out and "test 4: the put did not arrive" in out


def test_the_tier_fails_when_the_image_lacks_the_tester(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, tester_text=None)
    assert run.failed == [CASE], out
    assert f"epbuild: the image has no {FUNCTIONAL_TESTER} in {tmp_path}/opt/rocshmem/{{share/rocshmem,bin}}" in out


def test_the_tier_fails_when_the_driver_needs_an_mpirun_the_image_lacks(tmp_path: Path) -> None:
    # A driver without the single-node runtime (driver.sh@42ea0ed2 launches with mpirun only).
    old_driver = STAND_IN_DRIVER.read_text().replace("ROCSHMEM_TEST_SLR", "ROCSHMEM_NO_RUNTIME")
    run, out = run_tier(tmp_path, tester_text=fake_tester(None), driver_text=old_driver)
    assert run.failed == [CASE], out
    assert "launches the tests with mpirun, which the image lacks" in out


def test_a_cell_without_rocshmem_reports_the_case_not_run(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, tester_text=fake_tester(None), components=("vllm",))
    assert run.passed == 0 and not run.failed, out
    assert run.checks_not_run == [f"{CASE}: not run: cell gfx950-cx7-sid does not build rocshmem"], out


def test_the_dry_run_prints_the_command_and_runs_nothing(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, tester_text=None, dry_run=True)  # the stand-in docker exits 99 if run
    assert run.passed == 0 and not run.failed, out
    assert run.checks_not_run == [f"{CASE}: not run: dry run (rocshmem-functional)"], out
    assert f"{FUNCTIONAL_DRIVER} all 2 /tmp/rocshmem-functional-logs share/rocshmem bin" in out
    assert "[rocshmem-functional] asserts: the pin's" in out
