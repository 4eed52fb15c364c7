"""Against the real engine: a build records the base image's digest and full commits and is labelled with the key
`invoke matrix` computes; `--source` builds a local tree with uncommitted changes, marks the image dirty, gives
it another key, and `publish` refuses it; `--serving` tags the vllm-openai image of the same stages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from epbuild.model.matrix import load_matrix
from epbuild.offline import REPOS_DIR, matrix_variant

from harness import cells_json, docker_run, invoke

# Each pins stand-in commits through matrix_variant, which reads the stand-ins' commits.json.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

CELL = "gfx950-cx7-sid"


def inspect(image: str, what: str) -> Any:
    return json.loads(subprocess.run(["docker", "image", "inspect", "--format", f"{{{{json {what}}}}}", image],
                                     capture_output=True, text=True, check=True).stdout)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Path:
    invoke("sources", "--matrix", "examples/offline/matrix.yaml", "--cell", CELL, check=True)  # prepares the repos
    matrix = matrix_variant(tmp_path_factory.mktemp("pins"), image_name="epbuild-pins/local")
    invoke("render", "--matrix", str(matrix), check=True)
    return matrix


@pytest.fixture(scope="module")
def local_tree(tmp_path_factory: pytest.TempPathFactory, variant: Path) -> Path:
    """A checkout of the DeepEP stand-in at its pin, with an uncommitted change to the revision it compiles in."""
    tree = tmp_path_factory.mktemp("trees") / "DeepEP"
    subprocess.run(["git", "clone", "--quiet", str(REPOS_DIR / "deepep.git"), str(tree)], check=True)
    rev = tree / "csrc" / "fixture_rev.h"
    rev.write_text(rev.read_text().replace("deepep-fixture-rev-A", "deepep-fixture-rev-LOCAL"))
    return tree


def test_a_clean_build_records_its_exact_inputs_and_the_listed_key(variant: Path) -> None:
    invoke("build", "--matrix", str(variant), "--cell", CELL, "--quiet", "--serving", check=True)
    cell = cells_json(str(variant))[CELL]
    labels = inspect(cell["image"], ".Config.Labels")
    assert labels["io.epbuild.content-key"] == cell["content_key"]
    assert labels["io.epbuild.dirty"] == "false"
    base = load_matrix(variant).model.bases[cell["base"]].image
    base_ids = {inspect(base, ".Id"), *(d.split("@")[1] for d in inspect(base, ".RepoDigests"))}
    assert labels["org.opencontainers.image.base.digest"] in base_ids
    fetched = subprocess.run(["git", "-C", str(REPOS_DIR / "deepep.git"), "rev-parse", "fixture/pinned"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert labels["io.epbuild.pin.deepep"] == fetched
    serving = f"{cell['image']}-vllm-openai"
    assert inspect(serving, ".Config.Entrypoint") == ["vllm", "serve"]
    assert inspect(serving, ".RootFS.Layers") == inspect(cell["image"], ".RootFS.Layers")


def test_a_local_tree_is_built_marked_dirty_keyed_apart_and_refused_by_publish(variant: Path,
                                                                                local_tree: Path) -> None:
    clean_key = cells_json(str(variant))[CELL]["content_key"]
    invoke("build", "--matrix", str(variant), "--cell", CELL, "--quiet", "--source", f"deepep={local_tree}",
           check=True)
    image = cells_json(str(variant))[CELL]["image"]
    built = docker_run(image, "python3", "-c", "import deep_ep_cpp; print(deep_ep_cpp.build_info()['fixture_rev'])")
    assert built.strip() == "deepep-fixture-rev-LOCAL"
    labels = inspect(image, ".Config.Labels")
    assert labels["io.epbuild.dirty"] == "deepep"
    assert labels["io.epbuild.content-key"] != clean_key
    manifest = json.loads(docker_run(image, "cat", "/opt/epbuild/manifest.json"))
    assert manifest["dirty"] == ["deepep"] and manifest["components"]["deepep"]["local_tree"] == str(local_tree)
    refused = invoke("publish", "--matrix", str(variant), "--cell", CELL, "--registry", "127.0.0.1:9/epbuild")
    assert refused.code == 2 and "built from local trees (deepep" in refused.err
