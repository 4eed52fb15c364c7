"""What rocSHMEM's functional-test driver prints (projects/rocshmem/scripts/functional_tests/driver.sh in
ROCm/rocm-systems, read at 42ea0ed2 and 01b180d2): `Test:   <name>` for each test it runs, `Skip:   <name> (...)` for
one needing more ranks than it counts GPUs, `FAILED: <name>` (in colour) for each failure, and, from 01b180d2 on,
`PASSED: <name> (passed on retry)` for a failure that passed when the driver reran it (its own verdict: the run
exits 0 then)."""

from __future__ import annotations

import re
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TEST = re.compile(r"^Test:\s+(\S+)", re.M)
SKIP = re.compile(r"^Skip:\s+(\S+)", re.M)
FAILED = re.compile(r"^FAILED: (\S+)", re.M)
RETRIED_OK = re.compile(r"^PASSED: (\S+) \(passed on retry\)", re.M)


@dataclass(frozen=True)
class DriverRun:
    ran: list[str]
    skipped: list[str]
    failed: list[str]
    """Failures the driver did not see pass on a rerun."""


def read(log: str) -> DriverRun:
    text = ANSI.sub("", log)
    retried_ok = set(RETRIED_OK.findall(text))
    failed = [name for name in dict.fromkeys(FAILED.findall(text)) if name not in retried_ok]
    return DriverRun(TEST.findall(text), SKIP.findall(text), failed)


def problems(log: str) -> list[str]:
    """Why the run does not show rocSHMEM's functional tests passing: a failure, or no test run at all (a driver
    that skipped everything, or printed nothing it recognises, proves nothing)."""
    run = read(log)
    found = []
    if not run.ran:
        found.append("rocSHMEM's functional-test driver ran no test"
                     + (f" (skipped {len(run.skipped)}: {', '.join(run.skipped[:5])})" if run.skipped else ""))
    if run.failed:
        found.append(f"rocSHMEM's functional tests failed ({len(run.failed)} of {len(run.ran)}): "
                     + ", ".join(run.failed))
    return found
