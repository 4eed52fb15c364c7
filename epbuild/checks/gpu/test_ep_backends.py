"""vLLM's data-parallel example with each all2all backend (vLLM's AMD CI: tp=1, dp=2 on a 2-GPU agent; here dp is
the pool's GPU count, see the gpu_count fixture), asserting from vLLM's own log that the asked backend's manager
is the one vLLM instantiated (a silent fallback fails); an EPLB case on the same MoE model; and the pins' own
dispatch/combine tests, found in each pin's source."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pin_tests import PIN_TESTS, PinTest, export_tests, pin_has
from topology import Topology
from vllm_log import expectation, problems, rearrangements

pytestmark = pytest.mark.gpu

BACKENDS = ["deepep_high_throughput", "deepep_low_latency", "mori_high_throughput", "mori_low_latency"]
MODEL = "Qwen/Qwen1.5-MoE-A2.7B"
EXAMPLES = "/opt/vllm-examples"
# EPLB rearranges every `step_interval` engine steps; the example's prompts take far more steps than this.
EPLB_CONFIG = {"window_size": 16, "step_interval": 32, "num_redundant_experts": 0}


def example_argv(backend: str, gpus: int, topology: Topology, *extra: str) -> list[str]:
    argv = ["python3", f"{EXAMPLES}/offline_inference/data_parallel.py", f"--model={MODEL}", "-tp=1",
            f"-dp={gpus * topology.nodes}", "--max-model-len=2048", f"--all2all-backend={backend}", *extra]
    if topology.internode:
        address, port = topology.master.rsplit(":", 1)
        argv += [f"--node-size={topology.nodes}", f"--node-rank={topology.rank}", f"--master-addr={address}",
                 f"--master-port={port}"]
    return argv


def needs_component(expected: dict[str, Any], component: str, what: str) -> None:
    if component not in expected["components"]:
        pytest.fail(f"{what} needs {component}, which cell {expected['cell']} does not build")


@pytest.mark.parametrize("backend", BACKENDS)
def test_vllm_instantiates_the_backend_asked_for(gpu_count: int, expected: dict[str, Any], vllm_examples: Path,
                                                 topology: Topology, run_in_image: Callable[..., str],
                                                 backend: str) -> None:
    needs_component(expected, backend.split("_")[0], backend)
    expect = expectation(backend, topology.internode)
    log = run_in_image(backend, example_argv(backend, gpu_count, topology),
                       mounts={str(vllm_examples): EXAMPLES}, expect=str(expect))
    found = problems(log, expect)
    assert not found, "\n".join(found)


def test_mori_low_latency_runs_its_inter_node_kernel(gpu_count: int, expected: dict[str, Any], vllm_examples: Path,
                                                    topology: Topology, run_in_image: Callable[..., str]) -> None:
    """MoRI's InterNodeV1LL (the point of the MoRI backend split) runs only across nodes; on one node vLLM picks
    IntraNode for both MoRI backends, so such an agent cannot prove it and says so."""
    if not topology.internode:
        pytest.skip("not run: InterNodeV1LL runs only across nodes; set EPBUILD_GPU_NODES, EPBUILD_GPU_NODE_RANK "
                    "and EPBUILD_GPU_MASTER on each of two agents")
    needs_component(expected, "mori", "mori_low_latency")
    expect = expectation("mori_low_latency", internode=True)
    log = run_in_image("mori_low_latency-internode", example_argv("mori_low_latency", gpu_count, topology),
                       mounts={str(vllm_examples): EXAMPLES}, expect=str(expect))
    found = problems(log, expect)
    assert not found, "\n".join(found)


def test_eplb_rearranges_experts(gpu_count: int, expected: dict[str, Any], vllm_examples: Path,
                                 topology: Topology, run_in_image: Callable[..., str]) -> None:
    backend = "deepep_high_throughput"
    needs_component(expected, "deepep", "EPLB with deepep_high_throughput")
    extra = ["--enable-eplb", f"--eplb-config={json.dumps(EPLB_CONFIG, separators=(',', ':'))}"]
    expect = expectation(backend, topology.internode)
    log = run_in_image("eplb", example_argv(backend, gpu_count, topology, *extra),
                       mounts={str(vllm_examples): EXAMPLES},
                       expect=f"{expect} and at least one \"Rearranging experts\" outside the profile run")
    assert not problems(log, expect), "\n".join(problems(log, expect))
    assert rearrangements(log) >= 1, "vLLM never rearranged the experts (no \"Rearranging experts\" line)"


@pytest.mark.parametrize("test", PIN_TESTS, ids=lambda t: f"{t.component}-{t.name}")
def test_the_pins_own_tests(gpu_count: int, expected: dict[str, Any], run_in_image: Callable[..., str],
                            test: PinTest) -> None:
    if test.component not in expected["components"]:
        pytest.skip(f"not run: cell {expected['cell']} does not build {test.component}")
    source = expected["sources"][test.component]
    if not pin_has(source, test.path):
        pytest.skip(f"not run: {test.component} at {source['commit'][:12]} has no {test.path}")
    with tempfile.TemporaryDirectory(prefix=f"epbuild-{test.component}-tests-") as tmp:
        folder = f"/opt/pin-tests/{test.component}"
        export_tests(source, test, Path(tmp))
        run_in_image(f"{test.component}-{test.name}", test.argv(folder, gpu_count), mounts={tmp: folder},
                     expect=f"{test.path} at {source['commit'][:12]} exits 0")
