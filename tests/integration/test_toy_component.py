"""Issue 12: a component is one folder. A toy component copied to a temporary folder (a stand-in compiling one HIP
file, a stage after base, a wheel for final) is added to a copy of the offline matrix through `component_dirs`,
built with the real engine and checked from inside its image, and nothing of the project changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from epbuild.checks.offload import file_gpu_archs
from epbuild.model.yamlfile import dump_yaml
from epbuild.offline import matrix_variant

from harness import ROOT, InvokeResult, docker_run, invoke

# Each pins stand-in commits through matrix_variant, which reads the stand-ins' commits.json.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

TOY = Path(__file__).resolve().parent / "toy_component" / "toy"
CELL = "gfx942-thor2-sid"
OTHER = "gfx950-cx7-sid"
"""Both cells offline_build built: with the toy added, only the toy's stage and final are new work. (Two targets,
because bake names the target in its progress only when it builds several.)"""


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def project_state() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all"],
                          capture_output=True, text=True, check=True).stdout


def test_a_toy_component_from_a_folder_builds_and_is_checked(offline_build: InvokeResult, tmp_path: Path) -> None:
    before = project_state()
    components = tmp_path / "components"
    shutil.copytree(TOY, components / "toy", ignore=shutil.ignore_patterns("fixture", "__pycache__"))
    repo = tmp_path / "toy.git"
    shutil.copytree(TOY / "fixture", repo, ignore=shutil.ignore_patterns("__pycache__"))
    # A file no earlier run had, so the toy's source (and so its stage) is new to the engine's build cache even
    # on an engine that built the toy before: the test must see the toy stage execute.
    (repo / "run-id.txt").write_text(f"{uuid.uuid4()}\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "toy stand-in")
    commit = git(repo, "rev-parse", "HEAD")

    path = matrix_variant(tmp_path / "matrix", image_name="epbuild-offline/toy")
    data = yaml.safe_load(path.read_text())
    data["component_dirs"] = [str(components)]
    data["components"]["toy"] = {"repo": repo.as_uri(), "commit": commit}
    path.write_text(dump_yaml(data))

    invoke("render", "--matrix", str(path), check=True)
    dockerfile = (path.parent / "images" / CELL / "Dockerfile").read_text()
    assert "FROM base AS toy\n" in dockerfile and "--mount=type=bind,from=toy,source=/wheels/toy" in dockerfile
    cells = {c["cell"]: c for c in json.loads(invoke("matrix", "--matrix", str(path), "--json", check=True).out)["cells"]}
    assert "toy" in cells[CELL]["stages"] and cells[CELL]["components"]["toy"]["commit"] == commit

    built = invoke("build", "--matrix", str(path), "--cell", CELL, "--cell", OTHER, "--quiet", check=True)
    ran = {step["stage"] for step in built.summary["executed_run_steps"]}
    assert "toy" in ran and ran <= {"toy", "final"}, f"only the toy and final should run: {ran}"
    image = cells[CELL]["image"]
    library = docker_run(image, "python3", "-c", "import toy, pathlib; print(pathlib.Path(toy.__file__).parent / 'libtoy.so')")
    container = subprocess.run(["docker", "create", image], capture_output=True, text=True, check=True).stdout.strip()
    try:
        subprocess.run(["docker", "cp", f"{container}:{library.strip()}", str(tmp_path / "libtoy.so")], check=True)
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True)
    assert file_gpu_archs(tmp_path / "libtoy.so") == {"gfx942"}

    checked = invoke("test", "--matrix", str(path), "--cell", CELL, "--quiet")
    assert checked.code == 0, checked.out + checked.err
    report = (ROOT / "build" / "reports" / f"{CELL}-static.xml").read_text()
    assert "test_toy_imports_and_carries_the_cell_archs" in report
    assert project_state() == before, "adding a component from a folder changed files of the project"
