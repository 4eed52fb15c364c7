"""Preflight against the DeepEP stand-in, whose setup.py behaves as upstream's: what preflight says about a flag is
what running the stand-in through setuptools says, and a matrix asking the pinned commit for a flag it lacks is
refused after the fetch and before any build, naming component, pin, flag and matrix key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from epbuild.components import deepep
from epbuild.inputs import preflight
from epbuild.inputs.preflight import PreflightError, argparse_options, source_problems
from epbuild.inputs.source_requests import SourceRequest
from epbuild.inputs.sources import SourceCache
from epbuild.model.component import CellFacts, StageInput
from epbuild.model.interface import Interface, Use
from epbuild.offline.fixtures import _component_repo
from epbuild.offline.gitrepo import _read_tree
from epbuild.offline.overlays import overlays
from epbuild.offline.settings import FIXTURES_DIR
from epbuild.util.commands import Runner
from epbuild.util.resources import resource

DEEPEP = Path(deepep.__file__).resolve().parent
TORCH_STAND_IN = resource("examples/offline/base/torch-stand-in")
FLAGS = ["--rocm-explicit-ctx", "--aiter-moe", "--rocm-gfx942-fp8-fnuz-max 224", "--enable_timer", "--no-such-flag"]


def run_stand_in(setup_py: Path, flag: str, tmp_path: Path,
                 with_torch: bool = True) -> subprocess.CompletedProcess[str]:
    """The stand-in's setup.py with a fake rocSHMEM and hipcc, and the offline base's stand-in torch (or, where
    ``with_torch`` is false, no torch on the path): `--version` stops setuptools before any build, so only its
    option parsing decides the outcome."""
    rocshmem = tmp_path / "rocshmem"
    (rocshmem / "lib").mkdir(parents=True, exist_ok=True)
    (rocshmem / "lib" / "librocshmem.a").touch()
    (tmp_path / "rocm" / "bin").mkdir(parents=True, exist_ok=True)
    (tmp_path / "rocm" / "bin" / "hipcc").touch()
    env = {**os.environ, "ROCSHMEM_DIR": str(rocshmem), "ROCM_HOME": str(tmp_path / "rocm"),
           "PYTHONPATH": str(TORCH_STAND_IN) if with_torch else ""}
    return subprocess.run([sys.executable, str(setup_py), "--variant", "rocm", *flag.split(), "--nic", "cx7",
                           "--version"], cwd=setup_py.parent, env=env, capture_output=True, text=True)


def test_the_stand_in_needs_torch_before_parsing_anything(tmp_path: Path) -> None:
    # setup.py@a9ea9774 imports torch.utils.cpp_extension at the top: without torch even --version fails.
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "setup.py").write_bytes(stand_in_setup_py("fixture"))
    ran = run_stand_in(folder / "setup.py", "--aiter-moe", tmp_path, with_torch=False)
    assert ran.returncode != 0 and "No module named 'torch'" in ran.stderr, ran.stderr[-2000:]
    assert run_stand_in(folder / "setup.py", "--aiter-moe", tmp_path).returncode == 0


def stand_in_setup_py(tree: str) -> bytes:
    """setup.py as the stand-in's commit has it: fixture/'s, or what the fixture@<key>/ overlay makes of it."""
    fixture = DEEPEP / "fixture"
    if tree == "fixture":
        return (fixture / "setup.py").read_bytes()
    [files] = [files for key, files in overlays(fixture, _read_tree(fixture)) if f"fixture@{key}" == tree]
    return next(e.data for e in files if e.path == "setup.py")


@pytest.mark.parametrize("tree", ["fixture", "fixture@fnuz-max", "fixture@no-explicit-ctx"])
@pytest.mark.parametrize("flag", FLAGS)
def test_preflight_agrees_with_setuptools_on_every_flag(tree: str, flag: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "setup.py").write_bytes(stand_in_setup_py(tree))
    name, *value = flag.split()
    problems = source_problems("deepep at 000000000000", folder,
                               Interface([Use("flag", name, "test", value[0] if value else None)], parser="setup.py"))
    ran = run_stand_in(folder / "setup.py", flag, tmp_path)
    rejected = ran.returncode != 0
    assert rejected == bool(problems), (ran.stdout, ran.stderr, problems)
    if rejected:
        assert f"option {name} not recognized" in ran.stderr


def test_argparse_options_reads_choices() -> None:
    options = {n: o for o in argparse_options((DEEPEP / "fixture" / "setup.py").read_text()) for n in o.names}
    assert options["--nic"].choices == ("cx7", "thor2", "io")
    assert "--rocm-gfx942-fp8-fnuz-max" not in options


def deepep_at(tmp_path: Path, key: str, fnuz_max: float | None) -> tuple[StageInput, Path]:
    """The deepep stage's input for a gfx950 cx7 cell with DeepEP pinned to the stand-in's `key` commit, and the
    folder that commit is exported to."""
    (tmp_path / "repos").mkdir(exist_ok=True)
    repo = _component_repo(tmp_path / "repos", "deepep", DEEPEP / "fixture", FIXTURES_DIR, {})
    pin = deepep.DeepepPin(repo=repo.path.as_uri(), commit=repo.commits[key], gfx942_fp8_fnuz_max=fnuz_max)
    root = tmp_path / "root"
    exported = SourceCache(root, Runner()).export(SourceRequest("deepep", pin, pin.repo))
    facts = CellFacts({"gpu_targets": "gfx950", "nic.flag": "cx7"}, ("gpu_targets", "nic.flag"), "deepep")
    return StageInput(pin, {"deepep": pin}, facts), exported.path


def test_preflight_refuses_a_flag_the_pin_lacks_naming_component_pin_flag_and_key(tmp_path: Path) -> None:
    stage, folder = deepep_at(tmp_path, "pinned", 224)
    with pytest.raises(PreflightError) as err:
        preflight.check_sources([(f"deepep at {stage.pin.commit[:12]}", folder, deepep.interface(stage))],
                                Path("matrix.yaml"))
    message = str(err.value)
    for part in (f"deepep at {stage.pin.commit[:12]}", "--rocm-gfx942-fp8-fnuz-max",
                 "components.deepep.gfx942_fp8_fnuz_max", "not recognized", "nothing was built"):
        assert part in message, message


def test_the_same_flag_passes_at_the_commit_that_has_it(tmp_path: Path) -> None:
    stage, folder = deepep_at(tmp_path, "fnuz-max", 224)
    assert source_problems(f"deepep at {stage.pin.commit[:12]}", folder, deepep.interface(stage)) == []
