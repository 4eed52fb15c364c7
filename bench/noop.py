"""No-op rebuild: rebuild every cell with nothing changed, against the cold build of the same run.
Targets: at most 5% of the cold build's wall time, and zero RUN steps executed. Both run on a private engine
(bench/engines.py), fresh for the cold build, never on the shared one."""

from __future__ import annotations

from pathlib import Path

from bench.engines import private_engine
from bench.results import OFFLINE, build_summary, invoke, record
from bench.scratch import scratch


def main() -> None:
    invoke("sources", "--matrix", OFFLINE, "--all")
    with scratch("noop-") as tmp, \
            private_engine(OFFLINE, Path(tmp)):
        cold = build_summary("--matrix", OFFLINE, "--all")
        noop = build_summary("--matrix", OFFLINE, "--all")
    cold_wall, noop_wall = float(cold["wall_seconds"]), float(noop["wall_seconds"])  # type: ignore[arg-type]
    executed = len(noop["executed_run_steps"])  # type: ignore[arg-type]
    share = noop_wall / cold_wall
    met = share <= 0.05 and executed == 0
    record("No-op rebuild", [
        f"Cold build of every cell on a fresh engine {cold_wall:.1f} s; the same build again {noop_wall:.1f} s "
        f"({share:.1%} of cold), {executed} RUN steps executed. Target: at most 5% and zero RUN steps: "
        f"{'met' if met else 'MISSED'}.",
    ], {"cold_wall_seconds": cold_wall, "noop_wall_seconds": noop_wall, "noop_over_cold": round(share, 4),
        "noop_run_steps_executed": executed, "met": met})


if __name__ == "__main__":
    main()
