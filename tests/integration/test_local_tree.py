"""`--source COMPONENT=PATH` on a fresh clone of epbuild (no build/): the local tree is exported first and every
pre-bake step reads it (the pin of that component is neither fetched nor read), the image carries the edit and the
version setuptools-scm gives the checkout (dirty marker included), and a tree missing a file or a flag the stage
needs fails before bake, naming the local tree."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import setuptools_scm

from epbuild.build.bake_command import checkout_tag
from epbuild.offline import REPOS_DIR

from harness import docker_run, invoke_in

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

CELL = "gfx950-cx7-sid"
MATRIX = "examples/offline/matrix.yaml"
EDIT = 'LOCAL_EDIT = "epbuild-local-edit"\n'


def stand_in_checkout(dest: Path, component: str, branch: str = "fixture/pinned") -> Path:
    subprocess.run(["git", "clone", "--quiet", "--branch", branch, str(REPOS_DIR / f"{component}.git"), str(dest)],
                   check=True)
    return dest


@pytest.fixture(scope="module")
def vllm_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout of the vLLM stand-in at its pin with an uncommitted edit to a Python file."""
    tree = stand_in_checkout(tmp_path_factory.mktemp("trees") / "vllm", "vllm")
    params = tree / "vllm" / "sampling_params.py"
    params.write_text(params.read_text() + EDIT)
    return tree


def image_file(image: str, distribution: str, name: str) -> str:
    code = (f"import importlib.metadata as m; f = [p for p in m.files({distribution!r}) if p.name == {name!r}][0]; "
            "print(f.read_text(), end='')")
    return docker_run(image, "python3", "-c", code)


def test_a_local_tree_builds_on_a_fresh_clone_with_its_edit_and_its_own_version(fresh_clone: Path,
                                                                               vllm_tree: Path) -> None:
    built = invoke_in(fresh_clone, "build", "--matrix", MATRIX, "--cell", CELL, "--quiet",
                      "--source", f"vllm={vllm_tree}")
    assert built.code == 0, built.out[-3000:] + built.err[-3000:]
    # The pinned vLLM tree was never fetched: the only vLLM tree exported is the local one.
    assert [p.name.split("-")[1] for p in (fresh_clone / "build" / "sources").glob("vllm-*") if p.is_dir()] == ["local"]
    listed = json.loads(invoke_in(fresh_clone, "matrix", "--matrix", MATRIX, "--json").out)["cells"]
    cells = {c["cell"]: c for c in listed}
    image = checkout_tag(cells[CELL]["image"], fresh_clone)
    assert image_file(image, "vllm", "sampling_params.py").endswith(EDIT)
    installed = docker_run(image, "python3", "-c", "import importlib.metadata as m; print(m.version('vllm'))").strip()
    # What setuptools-scm itself gives the checkout (tracked file edited: dirty, so .dev and a date), with the ROCm
    # suffix vLLM's setup.py appends (no librocm-core in the offline base: torch.version.hip, read in the image).
    scm = setuptools_scm.get_version(root=str(vllm_tree))
    hip = docker_run(image, "python3", "-c", "import torch; print(torch.version.hip)").strip()
    expected = f"{scm}{'.' if '+' in scm else '+'}rocm{hip.replace('.', '')[:3]}"
    assert installed == expected and re.search(r"\.d\d{8}$", scm), (installed, expected)
    manifest = json.loads(docker_run(image, "cat", "/opt/epbuild/manifest.json"))
    assert manifest["dirty"] == ["vllm"] and manifest["components"]["vllm"]["local_tree"] == str(vllm_tree)


def test_a_local_tree_missing_a_file_the_stage_needs_fails_naming_it(fresh_clone: Path, vllm_tree: Path,
                                                                     tmp_path: Path) -> None:
    tree = tmp_path / "vllm"
    subprocess.run(["cp", "-a", str(vllm_tree), str(tree)], check=True)
    (tree / "rust" / "Cargo.lock").unlink()
    failed = invoke_in(fresh_clone, "build", "--matrix", MATRIX, "--cell", CELL, "--quiet", "--source", f"vllm={tree}")
    assert failed.code != 0
    assert f"vllm from the local tree {tree}: rust/Cargo.lock does not exist" in failed.err, failed.err[-3000:]
    assert "Traceback" not in failed.err


def test_a_local_tree_without_a_flag_the_matrix_asks_for_fails_in_preflight(fresh_clone: Path,
                                                                            tmp_path: Path) -> None:
    tree = stand_in_checkout(tmp_path / "DeepEP", "deepep", "fixture/no-explicit-ctx")
    failed = invoke_in(fresh_clone, "build", "--matrix", MATRIX, "--cell", CELL, "--quiet", "--source", f"deepep={tree}")
    assert failed.code != 0
    for part in (f"deepep from the local tree {tree}: setup.py has no option --rocm-explicit-ctx",
                 "components.deepep.explicit_ctx", "nothing was built"):
        assert part in failed.err, failed.err[-3000:]
