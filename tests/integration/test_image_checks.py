"""Issue 4: the in-image checks pass on a good image and fail, naming the right check, on derived broken ones."""

from __future__ import annotations

import re
import subprocess

import pytest

pytestmark = pytest.mark.docker

from harness import OFFLINE, InvokeResult, cells_json, docker_run, invoke, own_image

CELL = "gfx950-cx7-sid"


def failed_checks(result: InvokeResult) -> set[str]:
    return set(re.findall(r"^\s+failed: (\S+)$", result.out, re.M))


def derive(base: str, tag: str, dockerfile_body: str) -> str:
    dockerfile = f"FROM {base}\n{dockerfile_body}\n"
    proc = subprocess.run(["docker", "build", "--quiet", "-t", tag, "-"], input=dockerfile, text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return tag


def test_good_image_passes(offline_build: InvokeResult) -> None:
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--quiet")
    assert result.code == 0, result.out + result.err
    assert f"{CELL}: ok:" in result.out and " 0 failed" in result.out


def deep_ep_extension(image: str) -> str:
    return docker_run(image, "python3", "-c", "import deep_ep_cpp; print(deep_ep_cpp.__file__)").strip()


BROKEN = {
    # DeepEP built without device code for the cell's arch (vLLM issue 37709): its extension from a gfx942 build.
    "arch-missing": ("test_deepep::test_device_code_for_exactly_the_cell_archs", None),
    "library-removed": ("test_rocshmem::test_install_layout", "RUN rm /opt/rocshmem/lib/librocshmem.a"),
    "wrong-pin": ("test_manifest::test_manifest_names_the_built_pins",
                  "RUN sed -i 's/\"commit\": \"[0-9a-f]*\"/\"commit\": \"0000000000\"/' /opt/epbuild/manifest.json"),
    "build-folder-left": ("test_hygiene::test_no_build_leftovers",
                          "RUN mkdir -p /src/deepep/build && touch /src/deepep/build/CMakeCache.txt"),
}


@pytest.mark.parametrize("breakage", list(BROKEN))
def test_broken_image_fails_on_the_right_check(offline_build: InvokeResult, breakage: str) -> None:
    cells = cells_json()
    good = own_image(cells[CELL])
    check, body = BROKEN[breakage]
    if body is None:
        other = own_image(cells["gfx942-thor2-sid"])
        path = deep_ep_extension(good)
        assert deep_ep_extension(other) == path
        body = f"COPY --from={other} {path} {path}"
    image = derive(good, f"epbuild-broken/{breakage}:{CELL}", body)
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--image", image, "--quiet")
    assert result.code == 1, result.out + result.err
    failed = failed_checks(result)
    assert check in failed, f"expected {check} to fail; failed: {failed}"
    if breakage in ("wrong-pin", "build-folder-left", "arch-missing"):
        assert failed == {check}, f"only {check} should fail; failed: {failed}"


def test_gpu_tier_says_clearly_that_nothing_ran_without_a_gpu(offline_build: InvokeResult, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "class" / "kfd" / "kfd" / "topology" / "nodes" / "0").mkdir(parents=True)
    (tmp_path / "class/kfd/kfd/topology/nodes/0/properties").write_text("cpu_cores_count 64\ngfx_target_version 0\n")
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", env={"EPBUILD_SYSFS_ROOT": str(tmp_path)})
    assert result.code == 0
    assert "not run: no AMD GPU" in result.out


def test_gpu_tier_refuses_a_host_whose_gpus_cannot_run_the_cell(offline_build: InvokeResult, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = tmp_path / "class" / "kfd" / "kfd" / "topology" / "nodes" / "1"
    node.mkdir(parents=True)
    (node / "properties").write_text("gfx_target_version 90402\n")  # an MI325X: gfx942
    env = {"EPBUILD_SYSFS_ROOT": str(tmp_path)}
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", env=env)
    assert result.code == 0 and "this host's GPUs are gfx942" in result.out and "gfx950 only" in result.out
    strict = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--gpu", "--require-gpu", env=env)
    assert strict.code == 1
