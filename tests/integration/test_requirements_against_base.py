"""Issue 18: requirements are resolved against what the base image carries. A pin whose requirements only a
replaced base distribution would meet fails before any stage runs, naming the chain from its requirement file
and the base's own version (read from the base image here, not from epbuild)."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from epbuild.model.yamlfile import dump_yaml
from epbuild.offline import matrix_variant
from epbuild.offline.python_stand_ins import ensure_wheels

from harness import invoke

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]

CELL = "gfx950-cx7-sid"


def write_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                    + "".join(f"Requires-Dist: {r}\n" for r in requires))
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


def base_torch(matrix: Path) -> str:
    image = yaml.safe_load(matrix.read_text())["bases"]["sid"]["image"]
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c",
                          "import json, torch; print(json.dumps(torch.__version__))"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_requirement_that_would_replace_the_base_torch_fails_before_bake_naming_its_chain(tmp_path: Path) -> None:
    # A newer release of the stand-in for timm (which vLLM's requirements/rocm.txt names, unpinned) that needs a
    # torch the base does not have, and an index offering one, as PyPI offers CUDA torch.
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "vllm-stand-in-vision", "9.0", ("torch>=99",))
    write_wheel(wheels, "torch", "99.0")
    matrix = matrix_variant(tmp_path / "m", image_name="epbuild-offline/replaces-torch")
    data = yaml.safe_load(matrix.read_text())
    # Only this release of it is to be had (an older one that the base's torch meets would be taken instead): the
    # example's other stand-in wheels beside it, and no other place.
    for wheel in ensure_wheels(wheels):
        if wheel.name.startswith("vllm_stand_in_vision-1."):
            wheel.unlink()
    data["python"]["find_links"] = [wheels.as_uri()]
    matrix.write_text(dump_yaml(data))
    invoke("render", "--matrix", str(matrix), check=True)
    # The host's own pip configuration may cap torch (a constraints file): that is not what is tested here.
    result = invoke("build", "--matrix", str(matrix), "--cell", CELL, env={"PIP_CONFIG_FILE": os.devnull})
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err, result.err[-3000:]
    assert "-> torch (vllm-stand-in-vision 9.0 requires torch>=99)" in result.err, result.err[-3000:]
    assert "requirements/rocm.txt: vllm-stand-in-vision -> torch" in result.err \
        or "requirements/build/rocm.txt: vllm-stand-in-vision -> torch" in result.err, result.err[-3000:]
    assert f"would replace the base's torch {base_torch(matrix)} with 99.0" in result.err, result.err[-3000:]
    assert "docker buildx bake" not in result.out + result.err, "it reached the bake"
