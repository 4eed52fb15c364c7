"""A bake the engine failed (its socket dropped, a gRPC deadline passed) builds its cells once more; a bake the
build failed does not. The engine's messages are the ones real runs printed (stop 16's CI, a loaded machine's
DeadlineExceeded), the build's is BuildKit's wording for a RUN step's exit code; the bake is a stand-in script
that prints BuildKit's plain progress for a scripted outcome per target and attempt."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pytest

from epbuild.build.bake_command import BuildOptions
from epbuild.build.bake_runs import Bakes
from epbuild.build.buildreport import BuildReport, CellResult
from epbuild.build.engine_errors import engine_failure
from epbuild.build.flow import _rounds
from epbuild.model.matrix import load_matrix
from epbuild.render.dockerfiles import render_matrix
from epbuild.util.commands import Runner

ROOT = Path(__file__).resolve().parents[2]

SOCKET_DROPPED = ("write: error reading from server: read unix /var/run/docker.sock->@: read: connection reset by "
                  "peer: unavailable")
DEADLINE = "failed to solve: DeadlineExceeded: context deadline exceeded"
RUN_FAILED = 'process "/bin/sh -c make -j2" did not complete successfully: exit code: 2'

# Prints BuildKit's plain progress for each target named on the command line, as the scenario file says for this
# attempt at that target: ok, build (a RUN step fails), engine (a vertex fails with the socket dropped) or
# engine-final (bake's own last line only). A failure exits 1, as bake does.
FAKE_BAKE = r'''
import json, sys
from pathlib import Path
state = Path(sys.argv[1]); doc = json.loads(state.read_text())
targets = sys.argv[sys.argv.index("--metadata-file") + 2:]
code, final = 0, ""
for number, target in enumerate(targets, 1):
    attempt = doc["attempts"].setdefault(target, 0)
    doc["attempts"][target] += 1
    outcome = doc["scenario"][target][attempt]
    label = "deepep 2/3" if len(targets) == 1 else f"{target} deepep 2/3"
    print(f"#{number} [{label}] RUN make -j2")
    if outcome == "ok":
        print(f"#{number} DONE 0.1s")
    elif outcome == "build":
        print(f"#{number} ERROR: {doc['run_failed']}"); code, final = 1, f"ERROR: target {target}: failed to solve"
    elif outcome == "engine":
        print(f"#{number} ERROR: {doc['socket']}"); code, final = 1, f"ERROR: {doc['socket']}"
    else:
        print(f"#{number} CANCELED"); code, final = 1, f"ERROR: {doc['deadline']}"
if final:
    print(final)
state.write_text(json.dumps(doc))
sys.exit(code)
'''


@pytest.mark.parametrize("message", [SOCKET_DROPPED, DEADLINE,
                                     "failed to compute cache key: ref ab12cd locked: unavailable"])
def test_the_engines_own_failures_are_told_apart(message: str) -> None:
    assert engine_failure(message)


@pytest.mark.parametrize("message", [
    RUN_FAILED,
    # A step whose own output mentions a dropped connection is still the build's failure.
    'process "/bin/sh -c curl http://x || echo connection reset by peer; exit 3" did not complete successfully: '
    "exit code: 3",
    'failed to compute cache key: failed to calculate checksum of ref abc::def: "/missing": not found',
    "",
])
def test_the_builds_own_failures_are_not_the_engines(message: str) -> None:
    assert not engine_failure(message)


def run_rounds(tmp_path: Path, scenario: dict[str, list[str]]) -> tuple[dict[str, CellResult], list[list[str]]]:
    rendering = render_matrix(load_matrix(ROOT / "examples" / "offline" / "matrix.yaml"), ROOT)
    names = list(scenario)
    cells = [rc for rc in rendering.cells if rc.cell.name in names]
    assert [rc.cell.name for rc in cells] == names
    script, state = tmp_path / "bake.py", tmp_path / "state.json"
    script.write_text(FAKE_BAKE)
    state.write_text(json.dumps({"scenario": scenario, "attempts": {}, "socket": SOCKET_DROPPED,
                                 "deadline": DEADLINE, "run_failed": RUN_FAILED}))
    results = {name: CellResult(name, f"tag:{name}") for name in names}
    report = BuildReport(tmp_path, list(results.values()))
    bakes = Bakes(lambda targets: [sys.executable, str(script), str(state), *targets], lambda targets: targets, {},
                  tmp_path, True, tmp_path, report.progress, Runner(), names)
    _rounds(bakes, report, results, names, cells, BuildOptions(), time.monotonic())
    bake_targets = []  # the targets of each bake started, in order, from its command line in bake.log
    for line in (tmp_path / "bake.log").read_text().splitlines():
        if line.startswith("$ "):
            words = shlex.split(line[2:])
            bake_targets.append(words[words.index("--metadata-file") + 2:])
    return results, bake_targets


def test_a_cell_the_engine_failed_is_built_once_more(tmp_path: Path) -> None:
    results, bakes = run_rounds(tmp_path, {"gfx950-cx7-sid": ["engine", "ok"]})
    assert bakes == [["gfx950-cx7-sid"], ["gfx950-cx7-sid"]]
    assert results["gfx950-cx7-sid"].ok and not results["gfx950-cx7-sid"].error
    assert "connection reset by peer" in results["gfx950-cx7-sid"].retried_after


def test_the_engine_failing_twice_fails_the_cell_with_its_reason(tmp_path: Path) -> None:
    results, bakes = run_rounds(tmp_path, {"gfx950-cx7-sid": ["engine-final", "engine-final"]})
    assert bakes == [["gfx950-cx7-sid"], ["gfx950-cx7-sid"]]
    assert not results["gfx950-cx7-sid"].ok
    assert "DeadlineExceeded" in results["gfx950-cx7-sid"].error


def test_a_build_failure_is_not_built_again(tmp_path: Path) -> None:
    results, bakes = run_rounds(tmp_path, {"gfx942-cx7-sid": ["build"]})
    assert bakes == [["gfx942-cx7-sid"]]
    assert results["gfx942-cx7-sid"].failed_stage == "deepep"
    assert "exit code: 2" in results["gfx942-cx7-sid"].error and not results["gfx942-cx7-sid"].retried_after


def test_an_engine_failure_beside_a_build_failure_leaves_the_cell_to_round_two(tmp_path: Path) -> None:
    # Round 1 fails gfx942-cx7 by its build and gfx950-cx7 by the engine: gfx950-cx7 is then built once more, on
    # its own (round 2), never a third time; the build failure is not retried.
    results, bakes = run_rounds(tmp_path, {"gfx942-cx7-sid": ["build"], "gfx950-cx7-sid": ["engine", "ok", "ok"]})
    assert bakes == [["gfx942-cx7-sid", "gfx950-cx7-sid"], ["gfx950-cx7-sid"]]
    assert results["gfx950-cx7-sid"].ok and results["gfx950-cx7-sid"].retried_after
    assert not results["gfx942-cx7-sid"].ok and results["gfx942-cx7-sid"].failed_stage == "deepep"
