"""Locality: move one pin to the stand-in's other commit and rebuild every cell; list the stages that ran.
Targets: vLLM moved -> only `vllm` and `final`; rocSHMEM moved -> only `rocshmem`, `deepep` and `final`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.results import OFFLINE, ROOT, build_summary, invoke, record
from epbuild.offline import matrix_variant

EXPECTED = {"vllm": {"vllm", "final"}, "rocshmem": {"rocshmem", "deepep", "final"}}


def moved_matrix(folder: Path, component: str) -> Path:
    path = matrix_variant(folder / component, moved=[component])
    invoke("render", "--matrix", str(path))
    return path


def stages_run(summary: dict[str, object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for step in summary["executed_run_steps"]:  # type: ignore[union-attr]
        out[step["stage"]] = out.get(step["stage"], 0) + 1
    return out


def main() -> None:
    warm = build_summary("--matrix", OFFLINE, "--all")  # the starting point: every cell built at the pins
    figures: dict[str, object] = {"warm_start_run_steps_executed": len(warm["executed_run_steps"])}  # type: ignore[arg-type]
    lines = []
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        for component, expected in EXPECTED.items():
            summary = build_summary("--matrix", str(moved_matrix(Path(tmp), component)), "--all")
            ran = stages_run(summary)
            met = set(ran) == expected
            lines.append(f"{component} moved: stages that ran {', '.join(f'{k} (x{v})' for k, v in sorted(ran.items()))}"
                         f"; target {', '.join(sorted(expected))}: {'met' if met else 'MISSED'}.")
            figures[component] = {"stages_run": ran, "expected": sorted(expected), "met": met,
                                  "wall_seconds": summary["wall_seconds"]}
    invoke("build", "--quiet", "--matrix", OFFLINE, "--all")  # leave the local tags at the matrix's pins
    record("Locality", lines, figures)


if __name__ == "__main__":
    main()
