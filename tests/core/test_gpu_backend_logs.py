"""The GPU tier's backend assertions, proven here without a GPU: on vLLM logs modelled line by line on vLLM's own
(epbuild/checks/gpu/logs/README.md) they pass for the backend asked and fail on every fallback; the tier's real test, run
with a stand-in `docker` that prints such a log, fails on a fallback and passes on the right backend; and its dry
run prints each case and reports it not run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.checks.imagetest import CheckRun, _read_report

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "epbuild" / "checks" / "gpu" / "logs"
sys.path.insert(0, str(ROOT / "epbuild" / "checks" / "gpu"))

from vllm_log import expectation, problems, rearrangements  # noqa: E402

BACKENDS = ["deepep_high_throughput", "deepep_low_latency", "mori_high_throughput", "mori_low_latency"]
FALLBACKS = sorted(p.name for p in LOGS.glob("fallback-*.log"))


def log(name: str) -> str:
    return (LOGS / name).read_text()


@pytest.mark.parametrize("internode", [False, True], ids=["one node", "across nodes"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_of_the_backend_passes(backend: str, internode: bool) -> None:
    name = f"{backend}-internode.log" if internode and backend.startswith("mori") else f"{backend}.log"
    assert problems(log(name), expectation(backend, internode)) == []


def test_the_mori_split_is_told_apart_by_its_kernel_type() -> None:
    assert expectation("mori_low_latency", internode=True).kernel_type == "InterNodeV1LL"
    assert expectation("mori_high_throughput", internode=True).kernel_type == "InterNodeV1"
    low = problems(log("mori_high_throughput-internode.log"), expectation("mori_low_latency", internode=True))
    assert low and "InterNodeV1, expected InterNodeV1LL" in low[0], low


def test_every_fallback_log_is_there() -> None:
    assert FALLBACKS == ["fallback-agrs.log", "fallback-deepep-buffer-not-low-latency.log",
                         "fallback-mori_low_latency-internode-v1.log", "fallback-no-expert-parallel.log"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fallback", ["fallback-agrs.log", "fallback-no-expert-parallel.log"])
def test_a_fallback_to_another_manager_fails_every_backend(backend: str, fallback: str) -> None:
    found = problems(log(fallback), expectation(backend, internode=False))
    assert found, f"{fallback} passed as {backend}"


def test_the_pre_split_kernel_fails_mori_low_latency_across_nodes() -> None:
    found = problems(log("fallback-mori_low_latency-internode-v1.log"), expectation("mori_low_latency", True))
    assert found == ["mori_low_latency: MoRI ops made with kernel type InterNodeV1, expected InterNodeV1LL"]


def test_a_high_throughput_buffer_fails_deepep_low_latency() -> None:
    found = problems(log("fallback-deepep-buffer-not-low-latency.log"), expectation("deepep_low_latency", False))
    assert found == ["deepep_low_latency: DeepEP buffers made with low_latency_mode [False], expected True"]


@pytest.mark.parametrize("other", BACKENDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_backends_log_fails_another_backends_expectation(backend: str, other: str) -> None:
    same_on_one_node = {backend, other} == {"mori_high_throughput", "mori_low_latency"}  # both IntraNode there
    found = problems(log(f"{backend}.log"), expectation(other, internode=False))
    assert bool(found) == (backend != other and not same_on_one_node), found


def test_eplb_counts_rearrangements_but_not_the_profile_run() -> None:
    assert rearrangements(log("eplb.log")) == 1
    assert rearrangements(log("eplb-profile-only.log")) == 0


# The tier's own test, end to end: fake GPUs (sysfs), a pin history with vLLM's example, and a `docker` that
# prints a recorded log instead of running the image.

def pin_repo(folder: Path, files: dict[str, str]) -> dict[str, str]:
    """A pin's history: one commit holding `files`."""
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "pin"]):
        subprocess.run(["git", "-C", str(folder), *argv], check=True, env=env, capture_output=True)
    commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    return {"git_dir": str(folder / ".git"), "commit": commit}


def run_tier(tmp_path: Path, case: str, printed_log: Path | None, *, dry_run: bool = False,
             nodes: int = 1) -> tuple[CheckRun, str]:
    sysfs = tmp_path / "sys"
    for node, version in (("1", "90500"), ("2", "90500")):  # two gfx950 GPUs
        (sysfs / "class/kfd/kfd/topology/nodes" / node).mkdir(parents=True)
        (sysfs / "class/kfd/kfd/topology/nodes" / node / "properties").write_text(f"gfx_target_version {version}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\ncat {printed_log}\n" if printed_log else "#!/bin/sh\nexit 99\n")
    docker.chmod(0o755)
    vllm = pin_repo(tmp_path / "vllm", {"examples/offline_inference/data_parallel.py": "# the example\n"})
    # DeepEP's pin has its intranode test (not its low-latency one); MoRI's has none of its tests.
    deepep = pin_repo(tmp_path / "deepep", {"tests/test_intranode.py": "# DeepEP's test\n", "tests/utils.py": ""})
    mori = pin_repo(tmp_path / "mori", {"setup.py": ""})
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"image": "epbuild-offline/stack:gfx950-cx7-sid", "record": {
        "cell": "gfx950-cx7-sid", "nic": "cx7", "archs": ["gfx950"],
        "components": {"deepep": {"commit": "x"}, "mori": {"commit": "x"}, "vllm": {"commit": vllm["commit"]}}},
        "sources": {"vllm": vllm, "deepep": deepep, "mori": mori}}))
    report = tmp_path / "report.xml"
    env = {"EPBUILD_EXPECTED": str(expected), "EPBUILD_SYSFS_ROOT": str(sysfs), "EPBUILD_NUM_GPUS": "2",
           "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    if dry_run:
        env["EPBUILD_GPU_DRY_RUN"] = "1"
    if nodes > 1:  # this agent is node 0; the address is only passed on (the stand-in docker runs nothing)
        env.update({"EPBUILD_GPU_NODES": str(nodes), "EPBUILD_GPU_NODE_RANK": "0", "EPBUILD_GPU_MASTER": "node0:29500"})
    target = f"{ROOT}/epbuild/checks/gpu/test_ep_backends.py" + (f"::{case}" if case else "")
    proc = subprocess.run([sys.executable, "-m", "pytest", target,
                           "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=xunit2",
                           "--rootdir", str(ROOT / "epbuild" / "checks" / "gpu"), "-q", "-s", "-rs"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    run = CheckRun("gfx950-cx7-sid", "image", report)
    _read_report(run, proc.returncode)
    return run, proc.stdout + proc.stderr


@pytest.mark.parametrize("backend", ["deepep_low_latency", "mori_low_latency"])
def test_the_tier_fails_when_vllm_fell_back(tmp_path: Path, backend: str) -> None:
    case = f"test_vllm_instantiates_the_backend_asked_for[{backend}]"
    run, out = run_tier(tmp_path, case, LOGS / "fallback-agrs.log")
    assert run.failed == [f"test_ep_backends::{case}"], out
    assert "vLLM instantiated AgRsAll2AllManager" in out


@pytest.mark.parametrize("backend", ["deepep_low_latency", "mori_low_latency"])
def test_the_tier_passes_on_the_backend_asked_for(tmp_path: Path, backend: str) -> None:
    run, out = run_tier(tmp_path, f"test_vllm_instantiates_the_backend_asked_for[{backend}]", LOGS / f"{backend}.log")
    assert (run.passed, run.failed) == (1, []), out


def test_the_tier_says_the_inter_node_kernel_was_not_run_on_one_node(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, "test_mori_low_latency_runs_its_inter_node_kernel", None)
    assert run.passed == 0 and not run.failed, out
    assert len(run.checks_not_run) == 1 and "not run: InterNodeV1LL runs only across nodes" in run.checks_not_run[0]


@pytest.mark.parametrize("log_name,passes", [("mori_low_latency-internode.log", True),
                                             ("fallback-mori_low_latency-internode-v1.log", False)])
def test_across_nodes_the_tier_asserts_mori_low_latencys_own_kernel(tmp_path: Path, log_name: str,
                                                                    passes: bool) -> None:
    case = "test_mori_low_latency_runs_its_inter_node_kernel"
    run, out = run_tier(tmp_path, case, LOGS / log_name, nodes=2)
    assert (run.passed, run.failed) == ((1, []) if passes else (0, [f"test_ep_backends::{case}"])), out
    if not passes:
        assert "MoRI ops made with kernel type InterNodeV1, expected InterNodeV1LL" in out


def test_the_tier_fails_eplb_without_a_rearrangement(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, "test_eplb_rearranges_experts", LOGS / "eplb-profile-only.log")
    assert run.failed == ["test_ep_backends::test_eplb_rearranges_experts"], out
    assert "vLLM never rearranged the experts" in out
    run, out = run_tier(tmp_path / "good", "test_eplb_rearranges_experts", LOGS / "eplb.log")
    assert (run.passed, run.failed) == (1, []), out


def test_the_dry_run_prints_each_case_and_runs_none(tmp_path: Path) -> None:
    run, out = run_tier(tmp_path, "", None, dry_run=True)  # the stand-in docker exits 99 if anything runs it
    assert run.passed == 0 and not run.failed, out
    for backend in BACKENDS:
        assert f"--all2all-backend={backend}" in out and f"[{backend}] asserts: " in out, backend
    assert "'kernel_type'" not in out and "kernel_type='IntraNode'" in out  # what mori asserts on one node
    assert "--enable-eplb" in out
    assert "tests/test_intranode.py --num-processes 2" in out  # found in DeepEP's pin, run from where it is mounted
    not_run = sorted(line.split(": not run: ", 1)[1] for line in run.checks_not_run)
    assert not_run == sorted([*(f"dry run ({b})" for b in BACKENDS), "dry run (eplb)", "dry run (deepep-intranode)",
                              f"deepep at {run_pins(tmp_path)['deepep'][:12]} has no tests/test_low_latency.py",
                              f"mori at {run_pins(tmp_path)['mori'][:12]} has no "
                              "tests/python/ops/test_dispatch_combine_intranode.py",
                              not_run[[i for i, r in enumerate(not_run) if r.startswith("InterNodeV1LL")][0]]]), not_run


def run_pins(tmp_path: Path) -> dict[str, str]:
    expected = json.loads((tmp_path / "expected.json").read_text())
    return {name: source["commit"] for name, source in expected["sources"].items()}
