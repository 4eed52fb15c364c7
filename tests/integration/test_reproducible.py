"""Issue 14, item 11: two cold builds of one cell of the offline example (`--no-cache`: every step runs again)
give the same image digest, and the image's creation time is the newest commit time among the cell's pins, as
git itself reports it for the stand-in repositories."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone

import pytest

pytestmark = pytest.mark.docker

from harness import OFFLINE, ROOT, InvokeResult, invoke

CELL = "gfx950-cx7-sid"


def cold_build() -> tuple[InvokeResult, str]:
    result = invoke("build", "--matrix", OFFLINE, "--cell", CELL, "--no-cache", "--quiet", check=True)
    # Read from BuildKit's own output: every RUN step ran in this build. (One solve may print a step twice, the
    # second time as a hit of the first; what matters is that some vertex of each step was DONE, not CACHED.)
    log = (result.run_dir / "bake.log").read_text()
    steps: dict[str, set[str]] = {}
    for number, step in re.findall(r"^#(\d+) (\[[^\]]*\] RUN .*)$", log, re.MULTILINE):
        steps.setdefault(step, set()).add(number)
    done = set(re.findall(r"^#(\d+) DONE", log, re.MULTILINE))
    assert steps and all(numbers & done for numbers in steps.values()), "a --no-cache build took a RUN step from the cache"
    (cell,) = result.summary["cells"]
    return result, str(cell["image_id"])


def test_two_cold_builds_give_the_same_image(docker_engine: None) -> None:
    first, first_id = cold_build()
    second, second_id = cold_build()
    # (Read at once: the local tag is shared, and another checkout's build may move it and drop this image.)
    created = json.loads(subprocess.run(["docker", "image", "inspect", "--format", "{{json .Created}}", second_id],
                                        capture_output=True, text=True, check=True).stdout)
    assert first_id.startswith("sha256:") and first_id == second_id, (first_id, second_id)
    # The cell's pins are the commits the build resolved from the offline example's matrix; git gives their
    # commit times.
    # (The build writes the cell's record, with the full commits it resolved, into its run folder.)
    record = second.run_dir / "records" / CELL / "manifest.json"
    pins = json.loads(record.read_text())["components"]
    newest = max(int(subprocess.run(["git", "-C", str(ROOT / "build" / "offline" / "repos" / f"{name}.git"), "show",
                                     "--no-patch", "--format=%ct", pin["commit"]], capture_output=True, text=True,
                                    check=True).stdout) for name, pin in pins.items())
    assert datetime.fromisoformat(created.replace("Z", "+00:00")) == datetime.fromtimestamp(newest, timezone.utc)
