"""The NIC userspace checks pass on good thor2 and io images of the offline example and fail, naming the right
check, on images derived from them with the vendor's userspace broken (for io: a second ionic provider beside the
vendor's, as rdma-core's source build left it, or a vendor plugin for another libibverbs provider ABI)."""

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


IO_CELL = "gfx950-io-sid"
IONIC_DIR = "/usr/lib/x86_64-linux-gnu"
IO_BROKEN = {
    # What rdma-core's source build left before issue 18: its own libionic beside the vendor's, with verbs' plugin
    # naming it while ldconfig's libionic.so.1 (what rocSHMEM's dlopen reaches) names the vendor's.
    "second-libionic": (
        "test_nic_userspace::test_verbs_and_rocshmem_dlopen_load_the_same_vendor_library",
        f"RUN cp {IONIC_DIR}/libionic.so.1.1.117.3 {IONIC_DIR}/libionic.so.1.0.65.0 "
        f"&& ln -sfn ../libionic.so.1.0.65.0 {IONIC_DIR}/libibverbs/libionic-rdmav65.so"),
    # A vendor release built for another libibverbs: its plugin carries another provider ABI in its name.
    "plugin-for-another-abi": (
        "test_nic_userspace::test_verbs_and_rocshmem_dlopen_load_the_same_vendor_library",
        f"RUN mv {IONIC_DIR}/libibverbs/libionic-rdmav65.so {IONIC_DIR}/libibverbs/libionic-rdmav34.so"),
}


@pytest.fixture(scope="module")
def io_image(docker_engine: None) -> str:
    invoke("build", "--matrix", OFFLINE, "--cell", IO_CELL, "--quiet", check=True)
    return str(cells_json()[IO_CELL]["image"])


def test_good_io_image_passes(io_image: str) -> None:
    result = invoke("test", "--matrix", OFFLINE, "--cell", IO_CELL, "--quiet")
    assert result.code == 0, result.out + result.err
    assert f"{IO_CELL}: ok:" in result.out and " 0 failed" in result.out


@pytest.mark.parametrize("breakage", list(IO_BROKEN))
def test_a_second_ionic_provider_fails_the_right_check(io_image: str, breakage: str) -> None:
    check, body = IO_BROKEN[breakage]
    tag = f"epbuild-broken/{breakage}:{IO_CELL}"
    proc = subprocess.run(["docker", "build", "--quiet", "-t", tag, "-"], input=f"FROM {io_image}\n{body}\n",
                          text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    result = invoke("test", "--matrix", OFFLINE, "--cell", IO_CELL, "--image", tag, "--quiet")
    assert result.code == 1, result.out + result.err
    failed = set(re.findall(r"^\s+failed: (\S+)$", result.out, re.M))
    assert check in failed, f"expected {check} to fail; failed: {failed}"
    if breakage == "second-libionic":
        assert "test_nic_userspace::test_one_provider_library_in_the_image_owned_by_the_vendor" in failed, failed
