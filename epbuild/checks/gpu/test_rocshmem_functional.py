"""rocSHMEM's functional tests, run as upstream runs them: the tester the pin's all_backends build installed in the
image (epbuild/components/rocshmem: where the pin's `cmake --install` puts it) run by the pin's own driver, also
installed there, over the agent's GPUs. The run passes when the driver exits 0, ran at least one test and
reports no failure (rocshmem_driver_log.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rocshmem_driver_log import problems

from epbuild.components.rocshmem import FUNCTIONAL_DRIVER, FUNCTIONAL_TESTER, FUNCTIONAL_TESTER_DIRS

pytestmark = pytest.mark.gpu

SUITE = "all"
"""The driver's suite of every test (scripts/functional_tests/driver.sh@01b180d2 `all`: RMA, AMO, signal ops,
collectives, others, on-stream); tests needing more ranks than the agent's GPUs are skipped by the driver."""
LOG_DIR = "/tmp/rocshmem-functional-logs"

# Runs in the image. The tester and driver are looked up where the pin installs them; a missing one fails with
# its path. The driver launches each test with mpirun, its default; in an image without mpirun the driver's own
# single-node runtime (ROCSHMEM_TEST_SLR=1, driver.sh@01b180d2) is used where the pin's driver has it. NUM_GPUS tells the driver how many GPUs it may use (it reads amd-smi else).
FIND_AND_RUN = r"""
prefix=$1 tester=$2 driver=$1/$3 suite=$4 gpus=$5 logs=$6
shift 6
app=
for folder in "$@"; do
  if [ -x "$prefix/$folder/$tester" ]; then app=$prefix/$folder/$tester; break; fi
done
if [ -z "$app" ]; then
  echo "epbuild: the image has no $tester in $prefix/{$(IFS=,; echo "$*")}"; exit 3
fi
if [ ! -f "$driver" ]; then echo "epbuild: the image has no $driver"; exit 3; fi
if [ "$(id -u)" = 0 ]; then
  # The container runs as root, which Open MPI's mpirun refuses unless told both of these.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
if ! command -v mpirun >/dev/null; then
  if grep -q ROCSHMEM_TEST_SLR "$driver"; then
    export ROCSHMEM_TEST_SLR=1
  else
    echo "epbuild: $driver launches the tests with mpirun, which the image lacks"; exit 3
  fi
fi
NUM_GPUS=$gpus exec bash "$driver" "$app" "$suite" "$logs"
"""


def test_rocshmem_functional_tests(gpu_count: int, expected: dict[str, Any],
                                   run_in_image: Callable[..., str]) -> None:
    if "rocshmem" not in expected["components"]:
        pytest.skip(f"not run: cell {expected['cell']} does not build rocshmem")
    prefix = expected["components"]["rocshmem"]["copies"][0]
    argv = ["bash", "-c", FIND_AND_RUN, "rocshmem-functional", prefix, FUNCTIONAL_TESTER, FUNCTIONAL_DRIVER,
            SUITE, str(gpu_count), LOG_DIR, *FUNCTIONAL_TESTER_DIRS]
    log = run_in_image("rocshmem-functional", argv,
                       expect=f"the pin's {FUNCTIONAL_DRIVER} runs suite {SUITE!r} with {FUNCTIONAL_TESTER} on "
                              f"{gpu_count} GPUs, exits 0, runs at least one test and reports no failure")
    found = problems(log)
    assert not found, "\n".join(found)
