"""Preflight against the DeepEP stand-in, whose setup.py behaves as upstream's: what preflight says about a flag is
what running the stand-in through setuptools says, and a matrix asking the pinned commit for a flag it lacks is
refused after the fetch and before any build, naming component, pin, flag and matrix key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild import preflight
from epbuild.cells import Cell
from epbuild.commands import Runner
from epbuild.matrix import load_matrix
from epbuild.offline.fixtures import _component_repo
from epbuild.offline.settings import FIXTURES_DIR
from epbuild.plan import CellPlan
from epbuild.preflight import Interface, PreflightError, Use, argparse_options, check
from epbuild.sources import SourceCache, SourceRequest
from epbuild.stages import deepep

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--rocm-explicit-ctx", "--aiter-moe", "--rocm-gfx942-fp8-fnuz-max 224", "--enable_timer", "--no-such-flag"]


def run_stand_in(setup_py: Path, flag: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The stand-in's setup.py with a fake rocSHMEM and hipcc: `--version` stops setuptools before any build, so
    only its option parsing decides the outcome."""
    rocshmem = tmp_path / "rocshmem"
    (rocshmem / "lib").mkdir(parents=True, exist_ok=True)
    (rocshmem / "lib" / "librocshmem.a").touch()
    (tmp_path / "rocm" / "bin").mkdir(parents=True, exist_ok=True)
    (tmp_path / "rocm" / "bin" / "hipcc").touch()
    env = {**os.environ, "ROCSHMEM_DIR": str(rocshmem), "ROCM_HOME": str(tmp_path / "rocm")}
    return subprocess.run([sys.executable, str(setup_py), "--variant", "rocm", *flag.split(), "--nic", "cx7",
                           "--version"], cwd=setup_py.parent, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("tree", ["deepep", "deepep@fnuz-max"])
@pytest.mark.parametrize("flag", FLAGS)
def test_preflight_agrees_with_setuptools_on_every_flag(tree: str, flag: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "setup.py").write_bytes((FIXTURES_DIR / tree / "setup.py").read_bytes())
    name, *value = flag.split()
    problems = check("deepep", "0" * 40, folder, Interface([Use("flag", name, "test", value[0] if value else None)],
                                                           parser="setup.py"))
    ran = run_stand_in(folder / "setup.py", flag, tmp_path)
    rejected = ran.returncode != 0
    assert rejected == bool(problems), (ran.stdout, ran.stderr, problems)
    if rejected:
        assert f"option {name} not recognized" in ran.stderr


def test_argparse_options_reads_choices() -> None:
    options = {n: o for o in argparse_options((FIXTURES_DIR / "deepep" / "setup.py").read_text()) for n in o.names}
    assert options["--nic"].choices == ("cx7", "thor2", "io")
    assert "--rocm-gfx942-fp8-fnuz-max" not in options


def deepep_plan(tmp_path: Path, key: str, fnuz_max: float | None) -> tuple[CellPlan, Path]:
    """The offline example's gfx950-cx7 cell with DeepEP pinned to the stand-in's `key` commit."""
    (tmp_path / "repos").mkdir(exist_ok=True)
    repo = _component_repo(tmp_path / "repos", "deepep", FIXTURES_DIR, {})
    loaded = load_matrix(ROOT / "examples" / "offline" / "matrix.yaml")
    pin = loaded.model.components.deepep.model_copy(update={"repo": repo.path.as_uri(), "commit": repo.commits[key],
                                                            "gfx942_fp8_fnuz_max": fnuz_max})
    components = loaded.model.components.model_copy(update={"deepep": pin})
    plan = CellPlan(Cell("gfx950", "cx7"), loaded.model.model_copy(update={"components": components}))
    root = tmp_path / "root"
    SourceCache(root, Runner()).export(SourceRequest("deepep", pin, pin.repo))
    return plan, root


def test_preflight_refuses_a_flag_the_pin_lacks_naming_component_pin_flag_and_key(tmp_path: Path) -> None:
    plan, root = deepep_plan(tmp_path, "pinned", 224)
    folder = root / "build" / "sources" / f"deepep-{plan.pins['deepep'].commit}"
    with pytest.raises(PreflightError) as err:
        preflight.run([("deepep", plan.pins["deepep"].commit, folder, deepep.interface(plan))], Path("matrix.yaml"))
    message = str(err.value)
    for part in (f"deepep at {plan.pins['deepep'].commit[:12]}", "--rocm-gfx942-fp8-fnuz-max",
                 "components.deepep.gfx942_fp8_fnuz_max", "not recognized", "nothing was built"):
        assert part in message, message


def test_the_same_flag_passes_at_the_commit_that_has_it(tmp_path: Path) -> None:
    plan, root = deepep_plan(tmp_path, "fnuz-max", 224)
    folder = root / "build" / "sources" / f"deepep-{plan.pins['deepep'].commit}"
    assert check("deepep", plan.pins["deepep"].commit, folder, deepep.interface(plan)) == []
