"""What every benchmark shares: the machine it ran on, and recording its figures in docs/benchmarks.md (one
section per benchmark, replaced on each run, with the date, the commit measured and the machine)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
OFFLINE = "examples/offline/matrix.yaml"
HEADER = """# Benchmarks

Measured by the scripts in `bench/` on the offline example (`examples/offline/matrix.yaml`); each section is
rewritten by its script. Run one with `python3 -m bench.<name>` from the project root.
"""


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // (1024 * 1024)  # type: ignore[union-attr]
    engine = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True).stdout.strip() or "none"
    load = os.getloadavg()[0]  # other work on the machine stretches wall times: say how much there was
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Docker {engine}, Python {platform.python_version()}, "
            f"load average {load:.1f} at the end")


def measured_commit() -> str:
    """The checkout a benchmark measured: HEAD's short hash, with the files that differ from it named (this doc
    excepted, which every benchmark rewrites), so a figure is never taken for a commit's that it is not."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else ""  # not stripped: a status line starts with its columns

    head = git("rev-parse", "--short=12", "HEAD").strip() or "unknown (not a git checkout)"
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if line[3:] != str(DOC.relative_to(ROOT))]
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        return f"{head} with uncommitted changes to {shown}"
    return head


def record(section: str, lines: list[str], figures: dict[str, object]) -> None:
    """Prints the figures (last, as the benchmarks promise) and rewrites this benchmark's section of the doc,
    naming the commit it measured (the figures carry it too, as `commit`)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = measured_commit()
    figures = {"commit": commit, **figures}
    body = [f"## {section}", "", f"Run {stamp} at commit {commit} on {machine()}.", "", *lines, "",
            "```json", json.dumps(figures, indent=2), "```", ""]
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = "\n".join(body)
    text = pattern.sub(new, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + new
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(json.dumps(figures, indent=2))


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"invoke {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build_summary(*args: str) -> dict[str, object]:
    """Runs `invoke build` and returns the run's summary.json (per-cell results, executed RUN steps, wall time)."""
    proc = invoke("build", "--quiet", *args)
    run_dir = re.search(r"logs and replayable commands: (\S+)", proc.stdout).group(1)  # type: ignore[union-attr]
    return {**json.loads((Path(run_dir) / "summary.json").read_text()), "run_dir": run_dir}
