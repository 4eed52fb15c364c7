"""What vLLM's own log says about the expert-parallel all-to-all it set up, and what it must say for each backend.

The lines read here are vLLM's (vllm-project/vllm, after the "split MoRI backend" change):
- vllm/distributed/device_communicators/cuda_communicator.py, once the manager is built:
  `logger.info_once("Using %s all2all manager.", self.all2all_manager.__class__.__name__, scope="global")`
  (deepep_high_throughput -> DeepEPHTAll2AllManager, deepep_low_latency -> DeepEPLLAll2AllManager, both MoRI
  backends -> MoriAll2AllManager(cpu_group, all2all_backend); "naive"/"allgather_reducescatter" -> AgRsAll2AllManager,
  which is what a run that fell back shows).
- vllm/distributed/device_communicators/all2all.py, when a handle is made (DEBUG, so VLLM_LOGGING_LEVEL=DEBUG):
  DeepEPHT/DeepEPLL `logger.debug("DeepEP all2all args %s", buffer_kwargs)` with `low_latency_mode=False/True`;
  MoriAll2AllManager.get_handle `logger.debug("MoRI all2all args %s", mori_kwargs)` with `kernel_type`:
  IntraNode within a node; across nodes InterNodeV1LL for mori_low_latency and InterNodeV1 for
  mori_high_throughput (the point of the split).
- vllm/distributed/eplb/eplb_state.py, on EP rank 0 at each rearrangement:
  `logger.info("Rearranging experts %s %s...", "(async mode)" if self.is_async else "sync mode", "(profile)" ...)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MANAGER_LINE = re.compile(r"Using (\w+) all2all manager\.")
DEEPEP_ARGS = re.compile(r"DeepEP all2all args \{.*?'low_latency_mode': (True|False)")
MORI_KERNEL = re.compile(r"MoRI all2all args \{.*?'kernel_type': <?EpDispatchCombineKernelType\.(\w+)")
REARRANGED = re.compile(r"Rearranging experts (?:\(async mode\)|sync mode) (?!\(profile\))")


@dataclass(frozen=True)
class BackendExpectation:
    backend: str
    manager: str
    low_latency: bool | None = None
    """DeepEP: the low_latency_mode its buffer must be made with."""
    kernel_type: str | None = None
    """MoRI: the dispatch/combine kernel type its op must be made with."""


def expectation(backend: str, internode: bool) -> BackendExpectation:
    """What vLLM's log must show for `backend` on one node (internode False) or across nodes."""
    if backend == "deepep_high_throughput":
        return BackendExpectation(backend, "DeepEPHTAll2AllManager", low_latency=False)
    if backend == "deepep_low_latency":
        return BackendExpectation(backend, "DeepEPLLAll2AllManager", low_latency=True)
    if backend in ("mori_high_throughput", "mori_low_latency"):
        across = "InterNodeV1LL" if backend == "mori_low_latency" else "InterNodeV1"
        return BackendExpectation(backend, "MoriAll2AllManager", kernel_type=across if internode else "IntraNode")
    raise ValueError(f"no expectation for all2all backend {backend!r}")


def problems(log: str, expect: BackendExpectation) -> list[str]:
    """Why `log` does not show `expect.backend` running as asked; empty when it does."""
    found: list[str] = []
    managers = set(MANAGER_LINE.findall(log))
    if not managers:
        found.append("vLLM's log names no all2all manager (\"Using ... all2all manager.\"): expert parallelism with "
                     "an all2all backend never started")
    elif managers != {expect.manager}:
        found.append(f"{expect.backend}: vLLM instantiated {', '.join(sorted(managers))}, not {expect.manager}")
    if expect.low_latency is not None:
        modes = {m == "True" for m in DEEPEP_ARGS.findall(log)}
        if not modes:
            found.append(f"{expect.backend}: no DeepEP buffer was made (no \"DeepEP all2all args\" at DEBUG)")
        elif modes != {expect.low_latency}:
            found.append(f"{expect.backend}: DeepEP buffers made with low_latency_mode "
                         f"{sorted(modes)}, expected {expect.low_latency}")
    if expect.kernel_type is not None:
        kinds = set(MORI_KERNEL.findall(log))
        if not kinds:
            found.append(f"{expect.backend}: no MoRI dispatch/combine op was made (no \"MoRI all2all args\" at DEBUG)")
        elif kinds != {expect.kernel_type}:
            found.append(f"{expect.backend}: MoRI ops made with kernel type {', '.join(sorted(kinds))}, expected "
                         f"{expect.kernel_type}")
    return found


def rearrangements(log: str) -> int:
    """How many EPLB rearrangements (not the profiling run's) vLLM's EP rank 0 logged."""
    return len(REARRANGED.findall(log))
