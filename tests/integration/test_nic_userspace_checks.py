"""The NIC userspace checks pass on a good thor2 image of the offline example and fail, naming the right check,
on images derived from it with the vendor's userspace broken."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import OFFLINE, cells_json, invoke

pytestmark = pytest.mark.docker
CELL = "gfx950-thor2-sid"
LIB = "/usr/local/lib/x86_64-linux-gnu/libbnxt_re-rdmav34.so"

BROKEN = {
    # Broadcom's post-install copy is what rocSHMEM's fallback dlopen finds (ldconfig does not cache libbnxt_re.so).
    "copy-missing": ("test_nic_userspace::test_rocshmem_dlopen_sequence_loads_the_vendor_library",
                     "RUN rm /usr/local/lib/libbnxt_re* && ldconfig"),
    "library-swapped": ("test_nic_userspace::test_pinned_vendor_packages_at_their_versions",
                        f"RUN cp /usr/lib/x86_64-linux-gnu/libz.so.1 {LIB}"),
    "package-removed": ("test_nic_userspace::test_provider_library_resolves_from_the_pinned_package",
                        "RUN dpkg --purge bnxt-rocelib && ldconfig"),
}


@pytest.fixture(scope="module")
def thor2_image(docker_engine: None) -> str:
    invoke("build", "--matrix", OFFLINE, "--cell", CELL, "--quiet", check=True)
    return str(cells_json()[CELL]["image"])


def test_good_thor2_image_passes(thor2_image: str) -> None:
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--quiet")
    assert result.code == 0, result.out + result.err
    assert f"{CELL}: ok:" in result.out and " 0 failed" in result.out


@pytest.mark.parametrize("breakage", list(BROKEN))
def test_broken_vendor_userspace_fails_the_right_check(thor2_image: str, breakage: str) -> None:
    check, body = BROKEN[breakage]
    tag = f"epbuild-broken/{breakage}:{CELL}"
    proc = subprocess.run(["docker", "build", "--quiet", "-t", tag, "-"], input=f"FROM {thor2_image}\n{body}\n",
                          text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    result = invoke("test", "--matrix", OFFLINE, "--cell", CELL, "--image", tag, "--quiet")
    assert result.code == 1, result.out + result.err
    failed = set(re.findall(r"^\s+failed: (\S+)$", result.out, re.M))
    assert check in failed, f"expected {check} to fail; failed: {failed}"
