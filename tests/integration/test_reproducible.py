"""Issue 14, item 11 and issue 18, item 7: two cold builds (`--no-cache`: every step runs again) of one cell of each
NIC kind of the offline example give the same image digest per cell, and each image's creation time is the newest
commit time among the cell's pins, as git itself reports it for the stand-in repositories.

The NIC kinds differ in what the cheaper kinds never run: cx7 builds rdma-core from source, io adds the vendor's
packages over it (and removes rdma-core's copy of the provider), thor2 installs the vendor's packages over the
distribution's verbs. The cells share their base and arch, so each cold build is one bake in which the stages they
share (the requirements, AITER, vLLM, rdma-core for cx7 and io) run once; nothing is shared between the two builds."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone

import pytest

pytestmark = pytest.mark.docker

from epbuild.model.cells import expand
from epbuild.model.matrix import load_matrix

from harness import OFFLINE, ROOT, InvokeResult, invoke

CELLS = {"cx7": "gfx950-cx7-sid", "io": "gfx950-io-sid", "thor2": "gfx950-thor2-sid"}
"""One cell per NIC kind: the single-arch cells on the base every NIC is built on."""


def test_the_cells_cover_every_nic_kind_of_the_example() -> None:
    cells = {cell.name: cell for cell in expand(load_matrix(ROOT / OFFLINE).model)}
    assert {cells[name].nic for name in CELLS.values()} == set(CELLS) == {cell.nic for cell in cells.values()}


def cold_build() -> tuple[InvokeResult, dict[str, str]]:
    selection = [arg for cell in CELLS.values() for arg in ("--cell", cell)]
    result = invoke("build", "--matrix", OFFLINE, *selection, "--no-cache", "--quiet", check=True)
    # Read from BuildKit's own output: every RUN step ran in this build. (One solve may print a step twice, the
    # second time as a hit of the first, and a step the cells share under each cell's target name, executed under
    # one of them; what matters is that some vertex of each step, whichever target printed it, was DONE, not CACHED.)
    log = (result.run_dir / "bake.log").read_text()
    targets = "|".join(re.escape(cell) for cell in CELLS.values())
    steps: dict[str, set[str]] = {}
    for number, stage, run in re.findall(rf"^#(\d+) \[(?:(?:{targets}) )?([^\]]*)\] (RUN .*)$", log, re.MULTILINE):
        steps.setdefault(f"[{stage}] {run}", set()).add(number)
    done = set(re.findall(r"^#(\d+) DONE", log, re.MULTILINE))
    assert steps and all(numbers & done for numbers in steps.values()), "a --no-cache build took a RUN step from the cache"
    # The vendor stages ran in this build too (io's and thor2's own steps, not shared with cx7).
    assert len([s for s in steps if s.startswith("[vendor ")]) >= 2, sorted(steps)
    ids = {str(cell["cell"]): str(cell["image_id"]) for cell in result.summary["cells"]}
    assert set(ids) == set(CELLS.values()), ids
    return result, ids


def test_two_cold_builds_give_the_same_image_per_nic_kind(docker_engine: None) -> None:
    first, first_ids = cold_build()
    second, second_ids = cold_build()
    # (Read at once: the local tag is shared, and another checkout's build may move it and drop the image.)
    created = {cell: json.loads(subprocess.run(["docker", "image", "inspect", "--format", "{{json .Created}}", image],
                                               capture_output=True, text=True, check=True).stdout)
               for cell, image in second_ids.items()}
    for cell in CELLS.values():
        assert first_ids[cell].startswith("sha256:") and first_ids[cell] == second_ids[cell], (
            cell, first_ids[cell], second_ids[cell])
    # The cell's pins are the commits the build resolved from the offline example's matrix; git gives their
    # commit times. (The build writes the cell's record, with the full commits it resolved, into its run folder.)
    for cell in CELLS.values():
        pins = json.loads((second.run_dir / "records" / cell / "manifest.json").read_text())["components"]
        newest = max(int(subprocess.run(["git", "-C", str(ROOT / "build" / "offline" / "repos" / f"{name}.git"),
                                         "show", "--no-patch", "--format=%ct", pin["commit"]],
                                        capture_output=True, text=True, check=True).stdout)
                     for name, pin in pins.items())
        assert datetime.fromisoformat(created[cell].replace("Z", "+00:00")) == \
            datetime.fromtimestamp(newest, timezone.utc), cell
