"""The UCX and NIXL stand-ins refuse what their upstreams refuse (or what the stand-in README says it refuses more
strictly), run in the offline base with the build packages the matrix gives their stages: UCX's configure stops on
`--with-verbs` without the verbs headers, and builds on without the ib transports where verbs was not asked for;
NIXL's meson stops on a UCX prefix whose lib/ucx holds no transport modules, and configures against one that has
them."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
import yaml

from epbuild.model.component import BUILTIN_DIR
from epbuild.offline.settings import OFFLINE_BASE_IMAGE
from epbuild.util.resources import resource

pytestmark = pytest.mark.docker

UCX = BUILTIN_DIR / "ucx" / "fixture"
NIXL = BUILTIN_DIR / "nixl" / "fixture"


def build_packages() -> list[str]:
    """What the offline example's ucx and nixl stages install, and Debian's meson (the stage's comes from PyPI)."""
    components = yaml.safe_load(resource("examples/offline/matrix.yaml").read_text())["components"]
    return [*components["ucx"]["build_packages"], *components["nixl"]["build_packages"], "meson"]


@pytest.fixture(scope="module")
def tools_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    packages = " ".join(build_packages())
    dockerfile = (f"FROM {OFFLINE_BASE_IMAGE}\n"
                  "RUN apt-get -o Acquire::Check-Valid-Until=false update \\\n"
                  f" && apt-get install -y --no-install-recommends {packages} \\\n"
                  " && rm -rf /var/lib/apt/lists/*\n")
    tag = "epbuild-test/ucx-nixl-tools:" + hashlib.sha256(dockerfile.encode()).hexdigest()[:12]
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        folder = tmp_path_factory.mktemp("tools")
        (folder / "Dockerfile").write_text(dockerfile)
        done = subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
    return tag


def run(image: str, script: str) -> subprocess.CompletedProcess[str]:
    """`script` in the image without network, the stand-ins mounted read-only and copied to /src."""
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{UCX}:/fixture/ucx:ro",
         "-v", f"{NIXL}:/fixture/nixl:ro", image, "sh", "-c", "set -e; cp -r /fixture /src; " + script],
        capture_output=True, text=True, timeout=600)


UCX_CONFIGURE = "cd /src/ucx && ./autogen.sh >/dev/null 2>&1 && mkdir b && cd b && ../configure --prefix=/opt/ucx "


def test_configure_refuses_with_verbs_without_its_headers(tools_image: str) -> None:
    done = run(tools_image, "rm /usr/include/infiniband/verbs.h; " + UCX_CONFIGURE + "--with-verbs")
    assert done.returncode != 0
    assert "--with-verbs was given, but the verbs headers or libibverbs were not found" in done.stderr, (
        done.stderr[-2000:])


def test_configure_without_verbs_asked_builds_without_the_ib_transports(tools_image: str) -> None:
    done = run(tools_image, "rm /usr/include/infiniband/verbs.h; " + UCX_CONFIGURE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ibverbs header files not found" in done.stderr
    assert "UCX transports: rocm_copy,rocm_ipc" in done.stdout, done.stdout[-2000:]


UCX_INSTALL = (UCX_CONFIGURE + "--with-verbs --with-rocm=/usr >/dev/null && make -j2 >/dev/null 2>&1 "
               "&& make install >/dev/null; ")
NIXL_SETUP = "cd /src/nixl && meson setup b -Ducx_path=/opt/ucx -Dwheel_variant=rocm -Dbuild_tests=false"


def test_meson_refuses_a_ucx_without_plugins(tools_image: str) -> None:
    done = run(tools_image, UCX_INSTALL + "rm -r /opt/ucx/lib/ucx/*; " + NIXL_SETUP)
    assert done.returncode != 0
    assert "has no transport modules in lib/ucx" in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]


def test_meson_configures_against_a_ucx_with_plugins(tools_image: str) -> None:
    done = run(tools_image, UCX_INSTALL + NIXL_SETUP)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    # libaio-dev is among the stage's build packages: the POSIX backend's Linux AIO is found.
    assert "Has header \"libaio.h\"" in done.stdout or "io_setup" in done.stdout, done.stdout[-2000:]

