"""rdma-core: built from source at the pinned release where the NIC says so, or the distribution's with no other
copy."""

from __future__ import annotations

import re
from typing import Any

import pytest

LIBDIR = "/usr/lib/x86_64-linux-gnu"


def realpath(host: Any, path: str) -> str:
    result = host.run("readlink -f %s", path)
    assert result.rc == 0 and host.file(result.stdout.strip()).exists, f"{path} does not resolve"
    return result.stdout.strip()


def owned_by_package(host: Any, path: str) -> bool:
    return host.run("dpkg -S %s", path).rc == 0


@pytest.mark.cell(rdma_core="source")
@pytest.mark.parametrize("lib", ["libibverbs", "librdmacm"])
def test_source_built_library_at_the_pinned_version(host: Any, expected: dict[str, Any], lib: str) -> None:
    check_source_built(host, expected, lib)


@pytest.mark.cell(rdma_core="source", vendor_userspace=False)
def test_source_built_provider_library_at_the_pinned_version(host: Any, expected: dict[str, Any]) -> None:
    # Where the NIC has vendor userspace, the provider library is the vendor's (epbuild/checks/image/test_nic_userspace.py).
    check_source_built(host, expected, expected["provider_library"])


def check_source_built(host: Any, expected: dict[str, Any], lib: str) -> None:
    version = expected["components"]["rdma-core"]["release"]
    assert version, "the matrix pins rdma-core without a vX.Y tag, so the release to expect is unknown"
    target = realpath(host, f"{LIBDIR}/{lib}.so.1")
    assert re.fullmatch(rf"{LIBDIR}/{lib}\.so\.1\.\d+\.{re.escape(version)}", target), (
        f"{lib}.so.1 resolves to {target}, not to the {version} release rdma-core was pinned at")
    assert not owned_by_package(host, target), f"{target} belongs to a distribution package, not the source build"


def _provider_abi(plugin: str) -> str:
    match = re.fullmatch(r"lib.*-rdmav(\d+)\.so", plugin)
    assert match, f"{LIBDIR}/libibverbs/{plugin} is not named lib<provider>-rdmav<ABI>.so"
    return match.group(1)


@pytest.mark.cell(rdma_core="source")
def test_provider_plugins_and_driver_files(host: Any, expected: dict[str, Any]) -> None:
    provider = expected["provider"]
    found = host.run("ls %s", f"{LIBDIR}/libibverbs/").stdout.split()
    plugins = [f for f in found if re.fullmatch(rf"lib{provider}-rdmav\d+\.so", f)]
    assert plugins, f"no provider plugin lib{provider}-rdmav<ABI>.so in {LIBDIR}/libibverbs"
    abis = {_provider_abi(f) for f in found if f.endswith(".so")}
    assert len(abis) == 1, f"provider plugins disagree on the provider ABI: rdmav{', rdmav'.join(sorted(abis))}"
    # Where the NIC's vendor packages are its provider, the plugin is theirs (epbuild/checks/image/test_nic_userspace.py).
    for plugin in ([] if expected.get("vendor_provider") else plugins):
        assert not owned_by_package(host, f"{LIBDIR}/libibverbs/{plugin}"), f"{plugin} is the distribution's"
    assert host.file(f"/etc/libibverbs.d/{provider}.driver").exists, f"/etc/libibverbs.d/{provider}.driver missing"


@pytest.mark.cell(rdma_core="source")
def test_pkg_config_reports_the_release(host: Any, expected: dict[str, Any]) -> None:
    pc = host.file(f"{LIBDIR}/pkgconfig/libibverbs.pc")
    assert pc.exists, "libibverbs.pc missing"
    version = re.search(r"^Version:\s*(\S+)", pc.content_string, re.M)
    assert version and version.group(1).endswith("." + expected["components"]["rdma-core"]["release"]), pc.content_string
    if host.exists("pkg-config"):
        out = host.check_output("PKG_CONFIG_PATH=%s pkg-config --modversion libibverbs", f"{LIBDIR}/pkgconfig")
        assert out.strip() == version.group(1)


def test_unversioned_libibverbs_link_for_rocshmem_dlopen(host: Any) -> None:
    # rocSHMEM's GDA backend dlopens "libibverbs.so" (src/gda/ibv_wrapper.cpp), the unversioned name.
    target = realpath(host, f"{LIBDIR}/libibverbs.so")
    assert ".so.1." in target


@pytest.mark.cell(rdma_core="distribution")
def test_distribution_libibverbs_and_no_source_built_copy(host: Any, expected: dict[str, Any]) -> None:
    target = realpath(host, f"{LIBDIR}/libibverbs.so.1")
    assert owned_by_package(host, target), f"{target} is not from a distribution package"
    for path in host.run("ls %s", LIBDIR).stdout.split():
        if path.startswith(("libibverbs.so.1.", "librdmacm.so.1.")):
            assert owned_by_package(host, f"{LIBDIR}/{path}"), f"{LIBDIR}/{path} is a source-built copy"
    plugins = host.run("ls %s", f"{LIBDIR}/libibverbs/").stdout
    assert re.search(rf"lib{expected['provider']}-rdmav\d+\.so", plugins), f"no {expected['provider']} provider"
