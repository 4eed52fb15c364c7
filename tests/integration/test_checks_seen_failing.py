"""Issue 21: every in-image check is seen failing. Each group of broken_images.py's breakages is derived from a
good image of the offline example (a small layer on top, seconds to build) and checked once: exactly the group's
checks fail, every other check passes. And every check that runs on a good image has a breakage."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from broken_images import BREAKAGES, CX7, IO, THOR2, dockerfile, groups
from harness import OFFLINE, ROOT, cells_json, invoke, own_image

pytestmark = pytest.mark.docker
BREAKAGE_CONTEXT = Path(__file__).resolve().parent / "breakage"


def failed_checks(out: str) -> set[str]:
    return set(re.findall(r"^\s+failed: (\S+)$", out, re.M))


def checks_run(report: Path) -> set[str]:
    """The checks a run executed (not skipped), named as `invoke test` names them."""
    out = set()
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("skipped") is None:
            out.add(f"{Path(case.get('file') or case.get('classname', '').replace('.', '/')).stem}::{case.get('name')}")
    return out


@pytest.fixture(scope="module")
def good(docker_engine: None) -> dict[str, dict[str, object]]:
    """The cells' good images, built in one invocation, each checked once: cell -> image and checks run."""
    invoke("build", "--matrix", OFFLINE, "--cell", CX7, "--cell", THOR2, "--cell", IO, "--quiet", check=True)
    cells = cells_json()
    out: dict[str, dict[str, object]] = {}
    for cell in (CX7, THOR2, IO):
        result = invoke("test", "--matrix", OFFLINE, "--cell", cell, "--quiet")
        assert result.code == 0 and " 0 failed" in result.out, result.out + result.err
        out[cell] = {"image": own_image(cells[cell]),
                     "checks": checks_run(ROOT / "build" / "reports" / f"{cell}-static.xml")}
    return out


def test_every_check_that_runs_has_its_breakage(good: dict[str, dict[str, object]]) -> None:
    ran = set().union(*(info["checks"] for info in good.values()))  # type: ignore[arg-type]
    listed = {b.check for b in BREAKAGES}
    assert len(ran) >= 40, sorted(ran)
    assert not ran - listed, f"checks never seen failing (add them to broken_images.py): {sorted(ran - listed)}"
    assert not listed - ran, f"breakages of checks that do not run on their cell's image: {sorted(listed - ran)}"
    for b in BREAKAGES:
        assert b.check in good[b.cell]["checks"], f"{b.check} does not run on {b.cell}"  # type: ignore[operator]


@pytest.mark.parametrize("cell,group", list(groups()), ids=[f"{c}-{g}" for c, g in groups()])
def test_each_broken_property_fails_exactly_its_check(good: dict[str, dict[str, object]], cell: str,
                                                      group: str) -> None:
    breakages = groups()[(cell, group)]
    tag = f"epbuild-broken/{group}:{cell}"
    proc = subprocess.run(["docker", "build", "--quiet", "-t", tag, "-f", "-", str(BREAKAGE_CONTEXT)],
                          input=dockerfile(str(good[cell]["image"]), breakages), text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = invoke("test", "--matrix", OFFLINE, "--cell", cell, "--image", tag, "--quiet")
    assert result.code == 1, result.out + result.err
    expected = {b.check for b in breakages} | {also for b in breakages for also in b.also}
    failed = failed_checks(result.out)
    assert failed == expected, (f"not failing: {sorted(expected - failed)}; failing but not broken on purpose: "
                                f"{sorted(failed - expected)}")
