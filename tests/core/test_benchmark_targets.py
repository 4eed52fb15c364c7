"""The cheap benchmarks' targets, held on every landing: each test runs its benchmark's own measurement (bench/)
and fails on a miss. docs/benchmarks.md keeps the figures a benchmark run recorded; these only guard them.

They must hold on a loaded 2-core CI machine without hiding a real regression, so each reads the figure that
other processes disturb least, with a stated margin of 2x:
- render speed: the process's CPU time (other processes' load is not counted in it), the best of 5 renders, each
  on a fresh matrix; at most 2x the 0.3 s target. The margin covers what load still adds to CPU time (shared
  caches and cores): on this machine at loads of 14-21 on 2 cores, a018ffc's renderer took 1.1-1.8 s of CPU
  where it takes about 1.0 s idle (issue 25), and this one's best of 5 ranged 0.34-0.61 s. A render back at the
  1 s it took before issue 25 fails here; a smaller miss shows as MISSED in `python3 -m bench.render_speed`.
- source check: the untouched check (stat only) is the best of 5 and may take at most 2x its 0.5 s target; a
  full re-hash must beat the export it saves (the median of each, both stretched alike by load).
The image size is checked on built images (tests/integration/test_image_size.py), the vLLM native step's locality
by building the stand-in (tests/integration/test_vllm_native_locality.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench import render_speed, source_check  # noqa: E402

CI_MARGIN = 2.0


def test_a_thousand_cells_render_within_the_target() -> None:
    files, timings = render_speed.timed_renders()
    assert files == 1002  # 334 archs x 3 NICs, one Dockerfile each: the benchmark measured what it claims
    best_cpu = min(t.cpu for t in timings)
    assert best_cpu <= render_speed.TARGET_SECONDS * CI_MARGIN, \
        f"1,002 cells took {best_cpu:.3f} s of CPU at best (target {render_speed.TARGET_SECONDS} s, CI margin x{CI_MARGIN})"


def test_checking_a_cached_export_stays_cheap() -> None:
    times = source_check.measure()
    assert min(times.untouched) <= source_check.UNTOUCHED_TARGET_SECONDS * CI_MARGIN, times
    assert times.rehash < times.export, times
